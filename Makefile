# The appliance: UEFI loader, kernel, host tools and tests.
#   make            build loader, kernel and the ESP tree
#   make run        boot it in qemu+OVMF (TCG) with default disks and network;
#                   ARGS="..." passes options to tools/vm.py run (see --help)
#   make test       host unit tests + qemu integration tests
#   make image      GPT disk image for a USB stick
#   make deps       install missing Debian packages, fetch lwIP source

BUILD   := build
CC      := gcc
NASM    := nasm
LD      := ld
OBJCOPY := objcopy
PYTHON  := python3

WARN    := -Wall -Wextra -Werror
KCFLAGS := -std=gnu11 -O2 -g $(WARN) -ffreestanding -fno-stack-protector -fno-pic \
	   -fno-pie -mcmodel=kernel -mno-red-zone -mgeneral-regs-only \
	   -fno-omit-frame-pointer -fno-asynchronous-unwind-tables \
	   -fno-strict-aliasing -I. -MMD -MP
KLDFLAGS := -nostdlib -static -z max-page-size=4096 -z noexecstack -T linker.ld

EFI_INC := /usr/include/efi
EFI_LIB := /usr/lib
ECFLAGS := -std=gnu11 -O2 $(WARN) -Wno-unused-parameter -fpic -ffreestanding \
	   -fno-stack-protector -fshort-wchar -mno-red-zone -maccumulate-outgoing-args \
	   -I$(EFI_INC) -I$(EFI_INC)/x86_64 -I. -DEFI_FUNCTION_WRAPPER -MMD -MP

# Layers, selected by folder (see docs/ARCHITECTURE.md).  Portable code:
# platform/*.c (helpers over the interface), pcache/, iomap/, fs/ (cowfs;
# its kernel glue is fs/kernel/).  Each has one
# implementation of the platform under it: platform/host/ for host
# programs and tests, platform/kernel/ for the kernel (with the kernel's
# page-cache instance, shell commands and self-tests).
PLAT_SRCS        := $(wildcard platform/*.c)
PLAT_HOST_SRCS   := $(wildcard platform/host/*.c)
PLAT_KERNEL_SRCS := $(wildcard platform/kernel/*.c)
PCACHE_SRCS      := $(wildcard pcache/*.c)
IOMAP_SRCS       := $(wildcard iomap/*.c)
FS_SRCS          := $(wildcard fs/*.c)
FS_KERNEL_SRCS   := $(wildcard fs/kernel/*.c)
PORTABLE_SRCS    := $(PLAT_SRCS) $(PCACHE_SRCS) $(IOMAP_SRCS)

KERNEL_C   := $(wildcard kernel/*.c) $(wildcard drivers/*/*.c) $(wildcard drivers/*.c)
KERNEL_C   += $(PORTABLE_SRCS) $(PLAT_KERNEL_SRCS) $(FS_SRCS) $(FS_KERNEL_SRCS)
KERNEL_ASM := $(wildcard kernel/*.asm)
DEPS_STAMP := third_party/lwip.stamp
# The network stack (net/ and lwIP) adds to KERNEL_C and KERNEL_EXTRA_OBJ.
include net/net.mk
KERNEL_OBJ := $(KERNEL_C:%.c=$(BUILD)/k/%.o) $(KERNEL_ASM:%.asm=$(BUILD)/k/%.asm.o) $(KERNEL_EXTRA_OBJ)
# The screen console's font, converted at build time from a Debian console
# font (tools/psf.py; package console-setup-linux, installed by make deps).
# tools/psf.py names the file, so the screen test reads the same glyphs.
FONT_PSF   := $(shell $(PYTHON) tools/psf.py path)
FONT_C     := $(BUILD)/k/fbcon_font.c
KERNEL_OBJ += $(FONT_C:.c=.o)
BOOT_C     := $(wildcard boot/*.c)
BOOT_OBJ   := $(BOOT_C:%.c=$(BUILD)/efi/%.o)

KERNEL := $(BUILD)/kernel.elf
LOADER := $(BUILD)/BOOTX64.EFI
ESP    := $(BUILD)/esp
IMAGE  := $(BUILD)/appliance.img

.PHONY: all deps run test test-host test-qemu image esp clean
all: esp

deps:
	@bash tools/deps.sh

$(DEPS_STAMP): tools/deps.sh
	@bash tools/deps.sh

$(BUILD)/k/%.o: %.c | $(DEPS_STAMP)
	@mkdir -p $(dir $@)
	$(CC) $(KCFLAGS) -c $< -o $@

$(FONT_C): tools/psf.py $(FONT_PSF) | $(DEPS_STAMP)
	@mkdir -p $(dir $@)
	$(PYTHON) tools/psf.py c $(FONT_PSF) -o $@

$(FONT_PSF):
	@bash tools/deps.sh

$(FONT_C:.c=.o): $(FONT_C)
	$(CC) $(KCFLAGS) -c $< -o $@

$(BUILD)/k/%.asm.o: %.asm | $(DEPS_STAMP)
	@mkdir -p $(dir $@)
	$(NASM) -f elf64 -g -I kernel/ $< -o $@

$(KERNEL): $(KERNEL_OBJ) linker.ld
	$(LD) $(KLDFLAGS) -o $@ $(KERNEL_OBJ)

$(BUILD)/efi/%.o: %.c | $(DEPS_STAMP)
	@mkdir -p $(dir $@)
	$(CC) $(ECFLAGS) -c $< -o $@

$(BUILD)/loader.so: $(BOOT_OBJ)
	$(LD) -nostdlib -znocombreloc -shared -Bsymbolic -T $(EFI_LIB)/elf_x86_64_efi.lds \
		$(EFI_LIB)/crt0-efi-x86_64.o $(BOOT_OBJ) -o $@ -L$(EFI_LIB) -lgnuefi -lefi

$(LOADER): $(BUILD)/loader.so
	$(OBJCOPY) -j .text -j .sdata -j .data -j .dynamic -j .dynsym -j .rel \
		-j .rela -j .rel.* -j .rela.* -j .reloc --target efi-app-x86_64 $< $@

# The ESP as a directory: qemu can serve it as a FAT drive, and the image
# builder copies it verbatim.
esp: $(LOADER) $(KERNEL) tools/config.default.txt
	@mkdir -p $(ESP)/EFI/BOOT $(ESP)/appliance
	cp $(LOADER) $(ESP)/EFI/BOOT/BOOTX64.EFI
	cp $(KERNEL) $(ESP)/appliance/kernel.elf
	cp tools/config.default.txt $(ESP)/appliance/config.txt

image: esp
	bash tools/mkimage.sh $(ESP) $(IMAGE)

# Options for tools/vm.py: make run ARGS="--smp 4 --args selftest"
run: esp
	@$(PYTHON) tools/vm.py run $(ARGS)

include tests/tests.mk

clean:
	rm -rf $(BUILD)

-include $(KERNEL_OBJ:.o=.d) $(BOOT_OBJ:.o=.d)

-include tools/peer/peer.mk
