; Application processor start-up code (see kernel/smp.c).
;
; smp_init() copies smp_trampoline_start..smp_trampoline_end to a page below
; 1 MiB, identity-maps that page, fills the parameter block at its end and
; sends INIT-SIPI-SIPI with the page number as the vector.  The AP starts in
; real mode at CS:IP = page<<8 : 0, so every reference here is relative to
; the page start (label - smp_trampoline_start) and absolute addresses are
; computed from CS at run time.  The blob lives in .rodata: it is only ever
; executed from the copy.
;
; Path: real mode -> 32-bit protected mode (flat GDT below) -> PAE, kernel
; CR3, EFER.LME|NXE (NXE before paging: the kernel tables set NX bits, which
; are reserved without it) -> paging on, 64-bit code segment -> jump to the
; higher-half C entry with the stack and percpu pointer from the block.

%define OFF(x) ((x) - smp_trampoline_start)

section .rodata
align 16
global smp_trampoline_start
global smp_trampoline_params
global smp_trampoline_end

bits 16
smp_trampoline_start:
	cli
	cld
	mov ax, cs
	mov ds, ax
	xor ebx, ebx
	mov bx, ax
	shl ebx, 4                              ; ebx = physical page base
	lea eax, [ebx + OFF(tr_gdt)]
	mov [OFF(tr_gdtr) + 2], eax
	lea eax, [ebx + OFF(tr_pm32)]
	mov [OFF(tr_far32)], eax
	lea eax, [ebx + OFF(tr_lm64)]
	mov [OFF(tr_far64)], eax
	o32 lgdt [OFF(tr_gdtr)]
	mov eax, cr0
	or eax, 1                               ; PE
	mov cr0, eax
	jmp far dword [OFF(tr_far32)]

bits 32
tr_pm32:
	mov ax, 0x10
	mov ds, ax
	mov es, ax
	mov ss, ax
	mov eax, cr4
	or eax, 1 << 5                          ; PAE
	mov cr4, eax
	mov eax, [ebx + OFF(smp_trampoline_params)]     ; cr3 (below 4 GiB)
	mov cr3, eax
	mov ecx, 0xc0000080                     ; EFER
	rdmsr
	or eax, (1 << 8) | (1 << 11)            ; LME | NXE
	wrmsr
	mov eax, cr0
	or eax, 0x80010000                      ; PG | WP
	mov cr0, eax
	jmp far dword [ebx + OFF(tr_far64)]

bits 64
tr_lm64:
	mov ebx, ebx                            ; upper half undefined after the mode switch
	mov rsp, [rbx + OFF(smp_trampoline_params) + 8]
	mov rdi, [rbx + OFF(smp_trampoline_params) + 16]
	mov rax, [rbx + OFF(smp_trampoline_params) + 24]
	xor ebp, ebp                            ; ends backtraces
	push rbp                                ; fake return address: rsp = 8 mod 16
	jmp rax

align 8
tr_gdt:
	dq 0
	dq 0x00cf9a000000ffff                   ; 0x08 code 32-bit
	dq 0x00cf92000000ffff                   ; 0x10 data
	dq 0x00af9a000000ffff                   ; 0x18 code 64-bit
tr_gdt_end:
tr_gdtr:
	dw tr_gdt_end - tr_gdt - 1
	dd 0                                    ; base, patched
tr_far32:
	dd 0                                    ; offset, patched
	dw 0x08
tr_far64:
	dd 0
	dw 0x18

; Parameter block, filled by smp.c (struct smp_tramp_params).
align 8
smp_trampoline_params:
	dq 0                                    ; +0  cr3
	dq 0                                    ; +8  stack top
	dq 0                                    ; +16 struct percpu *
	dq 0                                    ; +24 C entry point
smp_trampoline_end:
