; Context switch between kernel threads (see kernel/sched.c).
;
; struct thread *sched_switch_to(struct thread *prev, struct thread *next)
;   Saves the System V callee-saved registers on prev's stack and the stack
;   pointer in prev->rsp (offset 0), loads next's, and returns on next's
;   stack.  rax = prev, so the resumed thread learns who ran before it.
;   Caller-saved registers need no saving: this is an ordinary call.  No FPU
;   state exists (the kernel is built -mgeneral-regs-only).
bits 64
section .text

global sched_switch_to
global sched_thread_trampoline
extern sched_finish_switch
extern thread_exit

sched_switch_to:
	push rbp
	push rbx
	push r12
	push r13
	push r14
	push r15
	mov [rdi], rsp
	mov rsp, [rsi]
	mov rax, rdi
	pop r15
	pop r14
	pop r13
	pop r12
	pop rbx
	pop rbp
	ret

; First code of every new thread, reached by sched_switch_to's ret with
; rax = previous thread, r12 = fn, r13 = arg and rsp 16-byte aligned.
sched_thread_trampoline:
	mov rdi, rax
	call sched_finish_switch        ; drops the run queue lock
	sti
	mov rdi, r13
	call r12
	call thread_exit
	ud2
