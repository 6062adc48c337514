; Kernel entry from the UEFI loader: %rdi = struct boot_info *.
; Switch to the kernel's own boot stack, clear the frame pointer so
; backtraces end here, and call kmain.
bits 64
section .text.entry
global kernel_entry
extern kmain

kernel_entry:
	cli
	lea rsp, [rel boot_stack_top]
	xor rbp, rbp
	call kmain
.hang:
	cli
	hlt
	jmp .hang

section .bss
align 16
boot_stack:
	resb 65536
boot_stack_top:
