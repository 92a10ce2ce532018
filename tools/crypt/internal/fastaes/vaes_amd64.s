//go:build amd64 && !purego

#include "textflag.h"

// VAES (AVX2 encoding, YMM) XTS kernels: 16 blocks in flight as 8 YMM
// registers of two blocks each. The 16 tweaks of a group live on the stack
// as 8 pairs [T_2j, T_2j+1]; the setup computes them by serial doubling,
// then every pair advances independently by alpha^16 per group (no serial
// tweak chain in the loop). n must be a multiple of 16; on return *tweak
// holds the tweak of block n.

DATA xtsMaskY<>+0(SB)/4, $0x87
DATA xtsMaskY<>+4(SB)/4, $0
DATA xtsMaskY<>+8(SB)/4, $1
DATA xtsMaskY<>+12(SB)/4, $0
DATA xtsMaskY<>+16(SB)/4, $0x87
DATA xtsMaskY<>+20(SB)/4, $0
DATA xtsMaskY<>+24(SB)/4, $1
DATA xtsMaskY<>+28(SB)/4, $0
GLOBL xtsMaskY<>(SB), (NOPTR+RODATA), $32


// T <- T * alpha^16 in each 128-bit lane: T<<16 (a 2-byte lane shift) plus
// c*(x^7+x^2+x+1) for the 16 bits c shifted out (x^128 = x^7+x^2+x+1).
#define ADV16(T) \
	VPSRLDQ $14, T, Y13 \
	VPSLLDQ $2, T, T \
	VPSLLQ $1, Y13, Y14 \
	VPSLLQ $2, Y13, Y12 \
	VPXOR Y14, Y12, Y12 \
	VPSLLQ $7, Y13, Y14 \
	VPXOR Y13, Y14, Y14 \
	VPXOR Y12, T, T \
	VPXOR Y14, T, T

#define XTSINY(off, S) \
	VMOVDQU off(SI), S \
	VMOVDQU off(SP), Y8 \
	VPXOR Y8, S, S

#define XTSOUTY(off, S) \
	VMOVDQU off(SP), Y9 \
	VPXOR Y9, S, S \
	VMOVDQU S, off(DI) \
	ADV16(Y9) \
	VMOVDQU Y9, off(SP)

#define VOP8(op, K) op K, Y0, Y0; op K, Y1, Y1; op K, Y2, Y2; op K, Y3, Y3; op K, Y4, Y4; op K, Y5, Y5; op K, Y6, Y6; op K, Y7, Y7

// D <- S * alpha^k in each 128-bit lane (1 <= k <= 56), from S alone: each
// qword shifted left by k, the low qword's top k bits carried into the high
// qword, and the high qword's top k bits c folded back as
// c*(x^7+x^2+x+1). Clobbers Y11-Y14.
#define ADVK(k, S, D) \
	VPSRLQ $(64-k), S, Y11 \
	VPSLLQ $k, S, D \
	VPSLLDQ $8, Y11, Y12 \
	VPSRLDQ $8, Y11, Y11 \
	VPXOR Y12, D, D \
	VPSLLQ $1, Y11, Y12 \
	VPSLLQ $2, Y11, Y13 \
	VPSLLQ $7, Y11, Y14 \
	VPXOR Y11, D, D \
	VPXOR Y12, Y13, Y13 \
	VPXOR Y14, D, D \
	VPXOR Y13, D, D

// Setup: the 16 tweaks T_0..T_15 from *R9, as 8 pairs at 0(SP)..224(SP):
// Y9 = [T_0, T_1] by one doubling, then pair j = Y9 * alpha^(2j), all
// computed from Y9 independently (no serial chain of 15 doublings).
#define SETUP \
	VMOVDQU xtsMaskY<>(SB), Y10 \
	VMOVDQU (R9), X9 \
	VPSHUFD $0x13, X9, X11 \
	VPSRAD $31, X11, X11 \
	VPADDQ X9, X9, X12 \
	VPAND X10, X11, X11 \
	VPXOR X11, X12, X12 \
	VINSERTI128 $1, X12, Y9, Y9 \
	VMOVDQU Y9, 0(SP) \
	ADVK(2, Y9, Y8) \
	VMOVDQU Y8, 32(SP) \
	ADVK(4, Y9, Y8) \
	VMOVDQU Y8, 64(SP) \
	ADVK(6, Y9, Y8) \
	VMOVDQU Y8, 96(SP) \
	ADVK(8, Y9, Y8) \
	VMOVDQU Y8, 128(SP) \
	ADVK(10, Y9, Y8) \
	VMOVDQU Y8, 160(SP) \
	ADVK(12, Y9, Y8) \
	VMOVDQU Y8, 192(SP) \
	ADVK(14, Y9, Y8) \
	VMOVDQU Y8, 224(SP)

// func xtsEncVAES(nr int, xk *byte, dst, src *byte, n int, tweak *[16]byte)
TEXT ·xtsEncVAES(SB), NOSPLIT, $256-48
	MOVQ nr+0(FP), R8
	MOVQ xk+8(FP), BX
	MOVQ dst+16(FP), DI
	MOVQ src+24(FP), SI
	MOVQ n+32(FP), DX
	MOVQ tweak+40(FP), R9
	SETUP
xv_loop:
	CMPQ DX, $16
	JB xv_done
	XTSINY(0, Y0)
	XTSINY(32, Y1)
	XTSINY(64, Y2)
	XTSINY(96, Y3)
	XTSINY(128, Y4)
	XTSINY(160, Y5)
	XTSINY(192, Y6)
	XTSINY(224, Y7)
	MOVQ BX, AX
	VBROADCASTI128 (AX), Y8
	VOP8(VPXOR, Y8)
	ADDQ $16, AX
	MOVQ R8, CX
	DECQ CX
xv_round:
	VBROADCASTI128 (AX), Y8
	VOP8(VAESENC, Y8)
	ADDQ $16, AX
	DECQ CX
	JNZ xv_round
	VBROADCASTI128 (AX), Y8
	VOP8(VAESENCLAST, Y8)
	XTSOUTY(0, Y0)
	XTSOUTY(32, Y1)
	XTSOUTY(64, Y2)
	XTSOUTY(96, Y3)
	XTSOUTY(128, Y4)
	XTSOUTY(160, Y5)
	XTSOUTY(192, Y6)
	XTSOUTY(224, Y7)
	ADDQ $256, SI
	ADDQ $256, DI
	SUBQ $16, DX
	JMP xv_loop
xv_done:
	VMOVDQU 0(SP), X9
	VMOVDQU X9, (R9)
	VZEROUPPER
	RET

// func xtsDecVAES(nr int, dk *byte, dst, src *byte, n int, tweak *[16]byte)
TEXT ·xtsDecVAES(SB), NOSPLIT, $256-48
	MOVQ nr+0(FP), R8
	MOVQ dk+8(FP), BX
	MOVQ dst+16(FP), DI
	MOVQ src+24(FP), SI
	MOVQ n+32(FP), DX
	MOVQ tweak+40(FP), R9
	SETUP
xvd_loop:
	CMPQ DX, $16
	JB xvd_done
	XTSINY(0, Y0)
	XTSINY(32, Y1)
	XTSINY(64, Y2)
	XTSINY(96, Y3)
	XTSINY(128, Y4)
	XTSINY(160, Y5)
	XTSINY(192, Y6)
	XTSINY(224, Y7)
	MOVQ BX, AX
	VBROADCASTI128 (AX), Y8
	VOP8(VPXOR, Y8)
	ADDQ $16, AX
	MOVQ R8, CX
	DECQ CX
xvd_round:
	VBROADCASTI128 (AX), Y8
	VOP8(VAESDEC, Y8)
	ADDQ $16, AX
	DECQ CX
	JNZ xvd_round
	VBROADCASTI128 (AX), Y8
	VOP8(VAESDECLAST, Y8)
	XTSOUTY(0, Y0)
	XTSOUTY(32, Y1)
	XTSOUTY(64, Y2)
	XTSOUTY(96, Y3)
	XTSOUTY(128, Y4)
	XTSOUTY(160, Y5)
	XTSOUTY(192, Y6)
	XTSOUTY(224, Y7)
	ADDQ $256, SI
	ADDQ $256, DI
	SUBQ $16, DX
	JMP xvd_loop
xvd_done:
	VMOVDQU 0(SP), X9
	VMOVDQU X9, (R9)
	VZEROUPPER
	RET
