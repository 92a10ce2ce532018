//go:build amd64 && !purego

#include "textflag.h"

// Multi-block AES-NI kernels for dm-crypt sectors. Register use:
//   BX round keys, R8 rounds, AX/CX round-key cursor and counter,
//   SI src, DI dst, DX blocks left, X0-X7 states, X8 round key / temp,
//   X9 XTS tweak, X10 XTS doubling mask, X11-X15 temps.

// GF(2^128) doubling mask for the XTS tweak: dwords {0x87, 0, 1, 0}.
DATA xtsMask<>+0(SB)/4, $0x87
DATA xtsMask<>+4(SB)/4, $0
DATA xtsMask<>+8(SB)/4, $1
DATA xtsMask<>+12(SB)/4, $0
GLOBL xtsMask<>(SB), (NOPTR+RODATA), $16

// T <- T*alpha in GF(2^128), little-endian (IEEE P1619): shift each qword
// left, carry the low qword's top bit into the high qword and fold the high
// qword's top bit back as 0x87.
#define DOUBLE(T) \
	PSHUFD $0x13, T, X11 \
	PSRAL  $31, X11 \
	PADDQ  T, T \
	PAND   X10, X11 \
	PXOR   X11, T

#define PXOR8(K) PXOR K, X0; PXOR K, X1; PXOR K, X2; PXOR K, X3; PXOR K, X4; PXOR K, X5; PXOR K, X6; PXOR K, X7
#define AESENC8(K) AESENC K, X0; AESENC K, X1; AESENC K, X2; AESENC K, X3; AESENC K, X4; AESENC K, X5; AESENC K, X6; AESENC K, X7
#define AESENCLAST8(K) AESENCLAST K, X0; AESENCLAST K, X1; AESENCLAST K, X2; AESENCLAST K, X3; AESENCLAST K, X4; AESENCLAST K, X5; AESENCLAST K, X6; AESENCLAST K, X7
#define AESDEC8(K) AESDEC K, X0; AESDEC K, X1; AESDEC K, X2; AESDEC K, X3; AESDEC K, X4; AESDEC K, X5; AESDEC K, X6; AESDEC K, X7
#define AESDECLAST8(K) AESDECLAST K, X0; AESDECLAST K, X1; AESDECLAST K, X2; AESDECLAST K, X3; AESDECLAST K, X4; AESDECLAST K, X5; AESDECLAST K, X6; AESDECLAST K, X7

// func encBlock(nr int, xk *byte, dst, src *byte)
TEXT ·encBlock(SB), NOSPLIT, $0-32
	MOVQ nr+0(FP), CX
	MOVQ xk+8(FP), AX
	MOVQ dst+16(FP), DI
	MOVQ src+24(FP), SI
	MOVOU (SI), X0
	MOVOU (AX), X8
	PXOR X8, X0
	ADDQ $16, AX
	DECQ CX
eb_round:
	MOVOU (AX), X8
	AESENC X8, X0
	ADDQ $16, AX
	DECQ CX
	JNZ eb_round
	MOVOU (AX), X8
	AESENCLAST X8, X0
	MOVOU X0, (DI)
	RET

// XTS: load block i of 8, xor the tweak in, save the tweak, double it.
#define XTSIN(off, S) \
	MOVOU off(SI), S \
	PXOR X9, S \
	MOVOU X9, off(SP) \
	DOUBLE(X9)

#define XTSOUT(off, S) \
	MOVOU off(SP), X8 \
	PXOR X8, S \
	MOVOU S, off(DI)

// func xtsEnc(nr int, xk *byte, dst, src *byte, n int, tweak *[16]byte)
TEXT ·xtsEnc(SB), NOSPLIT, $128-48
	MOVQ nr+0(FP), R8
	MOVQ xk+8(FP), BX
	MOVQ dst+16(FP), DI
	MOVQ src+24(FP), SI
	MOVQ n+32(FP), DX
	MOVQ tweak+40(FP), R9
	MOVOU (R9), X9
	MOVOU xtsMask<>(SB), X10
xe_loop8:
	CMPQ DX, $8
	JB xe_tail
	XTSIN(0, X0)
	XTSIN(16, X1)
	XTSIN(32, X2)
	XTSIN(48, X3)
	XTSIN(64, X4)
	XTSIN(80, X5)
	XTSIN(96, X6)
	XTSIN(112, X7)
	MOVQ BX, AX
	MOVOU (AX), X8
	PXOR8(X8)
	ADDQ $16, AX
	MOVQ R8, CX
	DECQ CX
xe_round8:
	MOVOU (AX), X8
	AESENC8(X8)
	ADDQ $16, AX
	DECQ CX
	JNZ xe_round8
	MOVOU (AX), X8
	AESENCLAST8(X8)
	XTSOUT(0, X0)
	XTSOUT(16, X1)
	XTSOUT(32, X2)
	XTSOUT(48, X3)
	XTSOUT(64, X4)
	XTSOUT(80, X5)
	XTSOUT(96, X6)
	XTSOUT(112, X7)
	ADDQ $128, SI
	ADDQ $128, DI
	SUBQ $8, DX
	JMP xe_loop8
xe_tail:
	TESTQ DX, DX
	JZ xe_done
xe_loop1:
	MOVOU (SI), X0
	PXOR X9, X0
	MOVQ BX, AX
	MOVOU (AX), X8
	PXOR X8, X0
	ADDQ $16, AX
	MOVQ R8, CX
	DECQ CX
xe_round1:
	MOVOU (AX), X8
	AESENC X8, X0
	ADDQ $16, AX
	DECQ CX
	JNZ xe_round1
	MOVOU (AX), X8
	AESENCLAST X8, X0
	PXOR X9, X0
	MOVOU X0, (DI)
	DOUBLE(X9)
	ADDQ $16, SI
	ADDQ $16, DI
	DECQ DX
	JNZ xe_loop1
xe_done:
	MOVOU X9, (R9)
	RET

// func xtsDec(nr int, dk *byte, dst, src *byte, n int, tweak *[16]byte)
TEXT ·xtsDec(SB), NOSPLIT, $128-48
	MOVQ nr+0(FP), R8
	MOVQ dk+8(FP), BX
	MOVQ dst+16(FP), DI
	MOVQ src+24(FP), SI
	MOVQ n+32(FP), DX
	MOVQ tweak+40(FP), R9
	MOVOU (R9), X9
	MOVOU xtsMask<>(SB), X10
xd_loop8:
	CMPQ DX, $8
	JB xd_tail
	XTSIN(0, X0)
	XTSIN(16, X1)
	XTSIN(32, X2)
	XTSIN(48, X3)
	XTSIN(64, X4)
	XTSIN(80, X5)
	XTSIN(96, X6)
	XTSIN(112, X7)
	MOVQ BX, AX
	MOVOU (AX), X8
	PXOR8(X8)
	ADDQ $16, AX
	MOVQ R8, CX
	DECQ CX
xd_round8:
	MOVOU (AX), X8
	AESDEC8(X8)
	ADDQ $16, AX
	DECQ CX
	JNZ xd_round8
	MOVOU (AX), X8
	AESDECLAST8(X8)
	XTSOUT(0, X0)
	XTSOUT(16, X1)
	XTSOUT(32, X2)
	XTSOUT(48, X3)
	XTSOUT(64, X4)
	XTSOUT(80, X5)
	XTSOUT(96, X6)
	XTSOUT(112, X7)
	ADDQ $128, SI
	ADDQ $128, DI
	SUBQ $8, DX
	JMP xd_loop8
xd_tail:
	TESTQ DX, DX
	JZ xd_done
xd_loop1:
	MOVOU (SI), X0
	PXOR X9, X0
	MOVQ BX, AX
	MOVOU (AX), X8
	PXOR X8, X0
	ADDQ $16, AX
	MOVQ R8, CX
	DECQ CX
xd_round1:
	MOVOU (AX), X8
	AESDEC X8, X0
	ADDQ $16, AX
	DECQ CX
	JNZ xd_round1
	MOVOU (AX), X8
	AESDECLAST X8, X0
	PXOR X9, X0
	MOVOU X0, (DI)
	DOUBLE(X9)
	ADDQ $16, SI
	ADDQ $16, DI
	DECQ DX
	JNZ xd_loop1
xd_done:
	MOVOU X9, (R9)
	RET

// func cbcEnc1(nr int, xk *byte, dst, src *byte, n int, iv *[16]byte)
TEXT ·cbcEnc1(SB), NOSPLIT, $0-48
	MOVQ nr+0(FP), R8
	MOVQ xk+8(FP), BX
	MOVQ dst+16(FP), DI
	MOVQ src+24(FP), SI
	MOVQ n+32(FP), DX
	MOVQ iv+40(FP), R9
	MOVOU (R9), X0
c1_loop:
	MOVOU (SI), X12
	PXOR X12, X0
	MOVQ BX, AX
	MOVOU (AX), X8
	PXOR X8, X0
	ADDQ $16, AX
	MOVQ R8, CX
	DECQ CX
c1_round:
	MOVOU (AX), X8
	AESENC X8, X0
	ADDQ $16, AX
	DECQ CX
	JNZ c1_round
	MOVOU (AX), X8
	AESENCLAST X8, X0
	MOVOU X0, (DI)
	ADDQ $16, SI
	ADDQ $16, DI
	DECQ DX
	JNZ c1_loop
	RET

// func cbcEnc8(nr int, xk *byte, dst, src *byte, stride, n int, ivs *[8][16]byte)
// Eight chains at src + i*stride, n blocks each.
TEXT ·cbcEnc8(SB), NOSPLIT, $0-56
	MOVQ nr+0(FP), R8
	MOVQ xk+8(FP), BX
	MOVQ dst+16(FP), DI
	MOVQ src+24(FP), SI
	MOVQ stride+32(FP), R10
	MOVQ n+40(FP), DX
	MOVQ ivs+48(FP), R9
	LEAQ (R10)(R10*2), R11
	LEAQ (SI)(R10*4), R12
	LEAQ (DI)(R10*4), R13
	MOVOU 0(R9), X0
	MOVOU 16(R9), X1
	MOVOU 32(R9), X2
	MOVOU 48(R9), X3
	MOVOU 64(R9), X4
	MOVOU 80(R9), X5
	MOVOU 96(R9), X6
	MOVOU 112(R9), X7
c8_loop:
	MOVOU (SI), X12
	PXOR X12, X0
	MOVOU (SI)(R10*1), X13
	PXOR X13, X1
	MOVOU (SI)(R10*2), X14
	PXOR X14, X2
	MOVOU (SI)(R11*1), X15
	PXOR X15, X3
	MOVOU (R12), X12
	PXOR X12, X4
	MOVOU (R12)(R10*1), X13
	PXOR X13, X5
	MOVOU (R12)(R10*2), X14
	PXOR X14, X6
	MOVOU (R12)(R11*1), X15
	PXOR X15, X7
	MOVQ BX, AX
	MOVOU (AX), X8
	PXOR8(X8)
	ADDQ $16, AX
	MOVQ R8, CX
	DECQ CX
c8_round:
	MOVOU (AX), X8
	AESENC8(X8)
	ADDQ $16, AX
	DECQ CX
	JNZ c8_round
	MOVOU (AX), X8
	AESENCLAST8(X8)
	MOVOU X0, (DI)
	MOVOU X1, (DI)(R10*1)
	MOVOU X2, (DI)(R10*2)
	MOVOU X3, (DI)(R11*1)
	MOVOU X4, (R13)
	MOVOU X5, (R13)(R10*1)
	MOVOU X6, (R13)(R10*2)
	MOVOU X7, (R13)(R11*1)
	ADDQ $16, SI
	ADDQ $16, DI
	ADDQ $16, R12
	ADDQ $16, R13
	DECQ DX
	JNZ c8_loop
	RET

// func cbcDec(nr int, dk *byte, dst, src *byte, n int, iv *[16]byte)
// Within one chain: P_i = D(C_i) ^ C_{i-1}; 8 blocks in flight. All
// ciphertext needed for a group is read before the group is stored, so
// dst == src works.
TEXT ·cbcDec(SB), NOSPLIT, $0-48
	MOVQ nr+0(FP), R8
	MOVQ dk+8(FP), BX
	MOVQ dst+16(FP), DI
	MOVQ src+24(FP), SI
	MOVQ n+32(FP), DX
	MOVQ iv+40(FP), R9
	MOVOU (R9), X15
cd_loop8:
	CMPQ DX, $8
	JB cd_tail
	MOVOU 0(SI), X0
	MOVOU 16(SI), X1
	MOVOU 32(SI), X2
	MOVOU 48(SI), X3
	MOVOU 64(SI), X4
	MOVOU 80(SI), X5
	MOVOU 96(SI), X6
	MOVOU 112(SI), X7
	MOVQ BX, AX
	MOVOU (AX), X8
	PXOR8(X8)
	ADDQ $16, AX
	MOVQ R8, CX
	DECQ CX
cd_round8:
	MOVOU (AX), X8
	AESDEC8(X8)
	ADDQ $16, AX
	DECQ CX
	JNZ cd_round8
	MOVOU (AX), X8
	AESDECLAST8(X8)
	PXOR X15, X0
	MOVOU 0(SI), X8
	PXOR X8, X1
	MOVOU 16(SI), X8
	PXOR X8, X2
	MOVOU 32(SI), X8
	PXOR X8, X3
	MOVOU 48(SI), X8
	PXOR X8, X4
	MOVOU 64(SI), X8
	PXOR X8, X5
	MOVOU 80(SI), X8
	PXOR X8, X6
	MOVOU 96(SI), X8
	PXOR X8, X7
	MOVOU 112(SI), X15
	MOVOU X0, 0(DI)
	MOVOU X1, 16(DI)
	MOVOU X2, 32(DI)
	MOVOU X3, 48(DI)
	MOVOU X4, 64(DI)
	MOVOU X5, 80(DI)
	MOVOU X6, 96(DI)
	MOVOU X7, 112(DI)
	ADDQ $128, SI
	ADDQ $128, DI
	SUBQ $8, DX
	JMP cd_loop8
cd_tail:
	TESTQ DX, DX
	JZ cd_done
cd_loop1:
	MOVOU (SI), X0
	MOVOU X0, X14
	MOVQ BX, AX
	MOVOU (AX), X8
	PXOR X8, X0
	ADDQ $16, AX
	MOVQ R8, CX
	DECQ CX
cd_round1:
	MOVOU (AX), X8
	AESDEC X8, X0
	ADDQ $16, AX
	DECQ CX
	JNZ cd_round1
	MOVOU (AX), X8
	AESDECLAST X8, X0
	PXOR X15, X0
	MOVOU X14, X15
	MOVOU X0, (DI)
	ADDQ $16, SI
	ADDQ $16, DI
	DECQ DX
	JNZ cd_loop1
cd_done:
	RET

// func ecbEnc(nr int, xk *byte, dst, src *byte, n int)
// n independent blocks, 8 in flight (used for batches of XTS tweaks).
TEXT ·ecbEnc(SB), NOSPLIT, $0-40
	MOVQ nr+0(FP), R8
	MOVQ xk+8(FP), BX
	MOVQ dst+16(FP), DI
	MOVQ src+24(FP), SI
	MOVQ n+32(FP), DX
ee_loop8:
	CMPQ DX, $8
	JB ee_tail
	MOVOU 0(SI), X0
	MOVOU 16(SI), X1
	MOVOU 32(SI), X2
	MOVOU 48(SI), X3
	MOVOU 64(SI), X4
	MOVOU 80(SI), X5
	MOVOU 96(SI), X6
	MOVOU 112(SI), X7
	MOVQ BX, AX
	MOVOU (AX), X8
	PXOR8(X8)
	ADDQ $16, AX
	MOVQ R8, CX
	DECQ CX
ee_round8:
	MOVOU (AX), X8
	AESENC8(X8)
	ADDQ $16, AX
	DECQ CX
	JNZ ee_round8
	MOVOU (AX), X8
	AESENCLAST8(X8)
	MOVOU X0, 0(DI)
	MOVOU X1, 16(DI)
	MOVOU X2, 32(DI)
	MOVOU X3, 48(DI)
	MOVOU X4, 64(DI)
	MOVOU X5, 80(DI)
	MOVOU X6, 96(DI)
	MOVOU X7, 112(DI)
	ADDQ $128, SI
	ADDQ $128, DI
	SUBQ $8, DX
	JMP ee_loop8
ee_tail:
	TESTQ DX, DX
	JZ ee_done
ee_loop1:
	MOVOU (SI), X0
	MOVQ BX, AX
	MOVOU (AX), X8
	PXOR X8, X0
	ADDQ $16, AX
	MOVQ R8, CX
	DECQ CX
ee_round1:
	MOVOU (AX), X8
	AESENC X8, X0
	ADDQ $16, AX
	DECQ CX
	JNZ ee_round1
	MOVOU (AX), X8
	AESENCLAST X8, X0
	MOVOU X0, (DI)
	ADDQ $16, SI
	ADDQ $16, DI
	DECQ DX
	JNZ ee_loop1
ee_done:
	RET
