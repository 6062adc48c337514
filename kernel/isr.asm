; Interrupt entry stubs: one per vector, all building the same
; struct trap_frame (kernel/trap.h) before calling idt_dispatch(frame).
;
; Vectors where the CPU pushes an error code (8, 10-14, 17, 21, 29, 30)
; skip the dummy push so the frame layout is identical for every vector.
; Frame, from the top of the stack down: ss rsp rflags cs rip (CPU),
; error_code, vector, then rax rbx rcx rdx rsi rdi rbp r8..r15 (r15 lowest).
bits 64
section .text
extern idt_dispatch
global isr_stub_table

%macro ISR 1
isr_stub_%1:
%if (%1 == 8) || (%1 >= 10 && %1 <= 14) || (%1 == 17) || (%1 == 21) || (%1 == 29) || (%1 == 30)
%else
	push qword 0
%endif
	push qword %1
	jmp isr_common
%endmacro

%assign v 0
%rep 256
ISR v
%assign v v+1
%endrep

isr_common:
	push rax
	push rbx
	push rcx
	push rdx
	push rsi
	push rdi
	push rbp
	push r8
	push r9
	push r10
	push r11
	push r12
	push r13
	push r14
	push r15
	cld
	mov rdi, rsp
	; Keep the interrupted frame reachable for backtraces and realign to
	; 16 bytes for the C ABI (rbx is callee-saved, so it survives the call).
	mov rbx, rsp
	and rsp, -16
	call idt_dispatch
	mov rsp, rbx
	pop r15
	pop r14
	pop r13
	pop r12
	pop r11
	pop r10
	pop r9
	pop r8
	pop rbp
	pop rdi
	pop rsi
	pop rdx
	pop rcx
	pop rbx
	pop rax
	add rsp, 16             ; vector and error code
	iretq

section .rodata
align 8
isr_stub_table:
%assign v 0
%rep 256
	dq isr_stub_ %+ v
%assign v v+1
%endrep
