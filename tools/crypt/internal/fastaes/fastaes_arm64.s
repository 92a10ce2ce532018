//go:build arm64 && !purego

#include "textflag.h"

// Multi-block AES kernels for dm-crypt sectors using the ARMv8 Crypto
// Extensions (AESE/AESMC, AESD/AESIMC). Round keys live in V16-V30,
// right-aligned so the last key is always V30: AES-256 uses V16-V30,
// AES-192 V18-V30, AES-128 V20-V30; the round code enters at the first
// key of its size. V0-V7 hold up to 8 blocks in flight, V8-V15 tweaks or
// ciphertext copies, V31 the CBC chaining value.
//
// The encryption schedule is the FIPS-197 byte order; the decryption
// schedule is the equivalent inverse cipher (reversed, InvMixColumns on
// the middle keys), which is what AESD/AESIMC consume, as AESDEC does.

// LOADKEYS loads nr+1 round keys from KP (advanced) into V16-V30.
#define LOADKEYS(NR, KP, L128, L192) \
	CMP	$12, NR \
	BLT	L128 \
	BEQ	L192 \
	VLD1.P	32(KP), [V16.B16, V17.B16] \
L192: \
	VLD1.P	32(KP), [V18.B16, V19.B16] \
L128: \
	VLD1.P	64(KP), [V20.B16, V21.B16, V22.B16, V23.B16] \
	VLD1.P	64(KP), [V24.B16, V25.B16, V26.B16, V27.B16] \
	VLD1	(KP), [V28.B16, V29.B16, V30.B16]

#define ENC8(K) \
	AESE	K.B16, V0.B16 \
	AESMC	V0.B16, V0.B16 \
	AESE	K.B16, V1.B16 \
	AESMC	V1.B16, V1.B16 \
	AESE	K.B16, V2.B16 \
	AESMC	V2.B16, V2.B16 \
	AESE	K.B16, V3.B16 \
	AESMC	V3.B16, V3.B16 \
	AESE	K.B16, V4.B16 \
	AESMC	V4.B16, V4.B16 \
	AESE	K.B16, V5.B16 \
	AESMC	V5.B16, V5.B16 \
	AESE	K.B16, V6.B16 \
	AESMC	V6.B16, V6.B16 \
	AESE	K.B16, V7.B16 \
	AESMC	V7.B16, V7.B16

#define ENCLAST8(K) \
	AESE	K.B16, V0.B16 \
	AESE	K.B16, V1.B16 \
	AESE	K.B16, V2.B16 \
	AESE	K.B16, V3.B16 \
	AESE	K.B16, V4.B16 \
	AESE	K.B16, V5.B16 \
	AESE	K.B16, V6.B16 \
	AESE	K.B16, V7.B16

#define DEC8(K) \
	AESD	K.B16, V0.B16 \
	AESIMC	V0.B16, V0.B16 \
	AESD	K.B16, V1.B16 \
	AESIMC	V1.B16, V1.B16 \
	AESD	K.B16, V2.B16 \
	AESIMC	V2.B16, V2.B16 \
	AESD	K.B16, V3.B16 \
	AESIMC	V3.B16, V3.B16 \
	AESD	K.B16, V4.B16 \
	AESIMC	V4.B16, V4.B16 \
	AESD	K.B16, V5.B16 \
	AESIMC	V5.B16, V5.B16 \
	AESD	K.B16, V6.B16 \
	AESIMC	V6.B16, V6.B16 \
	AESD	K.B16, V7.B16 \
	AESIMC	V7.B16, V7.B16

#define DECLAST8(K) \
	AESD	K.B16, V0.B16 \
	AESD	K.B16, V1.B16 \
	AESD	K.B16, V2.B16 \
	AESD	K.B16, V3.B16 \
	AESD	K.B16, V4.B16 \
	AESD	K.B16, V5.B16 \
	AESD	K.B16, V6.B16 \
	AESD	K.B16, V7.B16

#define XORK8(K) \
	VEOR	K.B16, V0.B16, V0.B16 \
	VEOR	K.B16, V1.B16, V1.B16 \
	VEOR	K.B16, V2.B16, V2.B16 \
	VEOR	K.B16, V3.B16, V3.B16 \
	VEOR	K.B16, V4.B16, V4.B16 \
	VEOR	K.B16, V5.B16, V5.B16 \
	VEOR	K.B16, V6.B16, V6.B16 \
	VEOR	K.B16, V7.B16, V7.B16

#define ENC1(K) \
	AESE	K.B16, V0.B16 \
	AESMC	V0.B16, V0.B16

#define ENCLAST1(K) \
	AESE	K.B16, V0.B16

#define DEC1(K) \
	AESD	K.B16, V0.B16 \
	AESIMC	V0.B16, V0.B16

#define DECLAST1(K) \
	AESD	K.B16, V0.B16

#define XORK1(K) \
	VEOR	K.B16, V0.B16, V0.B16

// T (R6 low, R7 high qword) <- T*alpha in GF(2^128), little-endian
// (IEEE P1619): shift left by one, fold the carry out of bit 127 back in
// as 0x87 (R9 holds 0x87).
#define DOUBLE \
	ASR	$63, R7, R8 \
	AND	R9, R8, R8 \
	ADDS	R6, R6, R6 \
	ADC	R7, R7, R7 \
	EOR	R8, R6, R6

// TWEAK puts the current tweak in V and advances it.
#define TWEAK(V) \
	VMOV	R6, V.D[0] \
	VMOV	R7, V.D[1] \
	DOUBLE

// func encBlock(nr int, xk *byte, dst, src *byte)
TEXT ·encBlock(SB), NOSPLIT, $0-32
	MOVD	nr+0(FP), R0
	MOVD	xk+8(FP), R1
	MOVD	dst+16(FP), R2
	MOVD	src+24(FP), R3
	LOADKEYS(R0, R1, eb_k128, eb_k192)
	VLD1	(R3), [V0.B16]
	CMP	$12, R0
	BLT	eb_r128
	BEQ	eb_r192
	ENC1(V16)
	ENC1(V17)
eb_r192:
	ENC1(V18)
	ENC1(V19)
eb_r128:
	ENC1(V20)
	ENC1(V21)
	ENC1(V22)
	ENC1(V23)
	ENC1(V24)
	ENC1(V25)
	ENC1(V26)
	ENC1(V27)
	ENC1(V28)
	ENCLAST1(V29)
	XORK1(V30)
	VST1	[V0.B16], (R2)
	RET

// func ecbEnc(nr int, xk *byte, dst, src *byte, n int)
// n independent blocks, 8 in flight (batches of XTS tweaks or ESSIV IVs).
TEXT ·ecbEnc(SB), NOSPLIT, $0-40
	MOVD	nr+0(FP), R0
	MOVD	xk+8(FP), R1
	MOVD	dst+16(FP), R2
	MOVD	src+24(FP), R3
	MOVD	n+32(FP), R4
	LOADKEYS(R0, R1, ecb_k128, ecb_k192)
ecb_loop8:
	CMP	$8, R4
	BLT	ecb_tail
	VLD1.P	64(R3), [V0.B16, V1.B16, V2.B16, V3.B16]
	VLD1.P	64(R3), [V4.B16, V5.B16, V6.B16, V7.B16]
	CMP	$12, R0
	BLT	ecb8_r128
	BEQ	ecb8_r192
	ENC8(V16)
	ENC8(V17)
ecb8_r192:
	ENC8(V18)
	ENC8(V19)
ecb8_r128:
	ENC8(V20)
	ENC8(V21)
	ENC8(V22)
	ENC8(V23)
	ENC8(V24)
	ENC8(V25)
	ENC8(V26)
	ENC8(V27)
	ENC8(V28)
	ENCLAST8(V29)
	XORK8(V30)
	VST1.P	[V0.B16, V1.B16, V2.B16, V3.B16], 64(R2)
	VST1.P	[V4.B16, V5.B16, V6.B16, V7.B16], 64(R2)
	SUB	$8, R4
	B	ecb_loop8
ecb_tail:
	CBZ	R4, ecb_done
	VLD1.P	16(R3), [V0.B16]
	CMP	$12, R0
	BLT	ecb1_r128
	BEQ	ecb1_r192
	ENC1(V16)
	ENC1(V17)
ecb1_r192:
	ENC1(V18)
	ENC1(V19)
ecb1_r128:
	ENC1(V20)
	ENC1(V21)
	ENC1(V22)
	ENC1(V23)
	ENC1(V24)
	ENC1(V25)
	ENC1(V26)
	ENC1(V27)
	ENC1(V28)
	ENCLAST1(V29)
	XORK1(V30)
	VST1.P	[V0.B16], 16(R2)
	SUB	$1, R4
	B	ecb_tail
ecb_done:
	RET

// func xtsEnc(nr int, xk *byte, dst, src *byte, n int, tweak *[16]byte)
// n blocks of one data unit; *tweak is the encrypted tweak of block 0 and
// on return holds the tweak of block n. 8 blocks in flight: the tweaks of
// a group are computed in R6/R7 and kept in V8-V15 for the final xor.
TEXT ·xtsEnc(SB), NOSPLIT, $0-48
	MOVD	nr+0(FP), R0
	MOVD	xk+8(FP), R1
	MOVD	dst+16(FP), R2
	MOVD	src+24(FP), R3
	MOVD	n+32(FP), R4
	MOVD	tweak+40(FP), R5
	LOADKEYS(R0, R1, xe_k128, xe_k192)
	LDP	(R5), (R6, R7)
	MOVD	$0x87, R9
xe_loop8:
	CMP	$8, R4
	BLT	xe_tail
	VLD1.P	64(R3), [V0.B16, V1.B16, V2.B16, V3.B16]
	VLD1.P	64(R3), [V4.B16, V5.B16, V6.B16, V7.B16]
	TWEAK(V8)
	TWEAK(V9)
	TWEAK(V10)
	TWEAK(V11)
	TWEAK(V12)
	TWEAK(V13)
	TWEAK(V14)
	TWEAK(V15)
	VEOR	V8.B16, V0.B16, V0.B16
	VEOR	V9.B16, V1.B16, V1.B16
	VEOR	V10.B16, V2.B16, V2.B16
	VEOR	V11.B16, V3.B16, V3.B16
	VEOR	V12.B16, V4.B16, V4.B16
	VEOR	V13.B16, V5.B16, V5.B16
	VEOR	V14.B16, V6.B16, V6.B16
	VEOR	V15.B16, V7.B16, V7.B16
	CMP	$12, R0
	BLT	xe8_r128
	BEQ	xe8_r192
	ENC8(V16)
	ENC8(V17)
xe8_r192:
	ENC8(V18)
	ENC8(V19)
xe8_r128:
	ENC8(V20)
	ENC8(V21)
	ENC8(V22)
	ENC8(V23)
	ENC8(V24)
	ENC8(V25)
	ENC8(V26)
	ENC8(V27)
	ENC8(V28)
	ENCLAST8(V29)
	XORK8(V30)
	VEOR	V8.B16, V0.B16, V0.B16
	VEOR	V9.B16, V1.B16, V1.B16
	VEOR	V10.B16, V2.B16, V2.B16
	VEOR	V11.B16, V3.B16, V3.B16
	VEOR	V12.B16, V4.B16, V4.B16
	VEOR	V13.B16, V5.B16, V5.B16
	VEOR	V14.B16, V6.B16, V6.B16
	VEOR	V15.B16, V7.B16, V7.B16
	VST1.P	[V0.B16, V1.B16, V2.B16, V3.B16], 64(R2)
	VST1.P	[V4.B16, V5.B16, V6.B16, V7.B16], 64(R2)
	SUB	$8, R4
	B	xe_loop8
xe_tail:
	CBZ	R4, xe_done
	VLD1.P	16(R3), [V0.B16]
	TWEAK(V8)
	VEOR	V8.B16, V0.B16, V0.B16
	CMP	$12, R0
	BLT	xe1_r128
	BEQ	xe1_r192
	ENC1(V16)
	ENC1(V17)
xe1_r192:
	ENC1(V18)
	ENC1(V19)
xe1_r128:
	ENC1(V20)
	ENC1(V21)
	ENC1(V22)
	ENC1(V23)
	ENC1(V24)
	ENC1(V25)
	ENC1(V26)
	ENC1(V27)
	ENC1(V28)
	ENCLAST1(V29)
	XORK1(V30)
	VEOR	V8.B16, V0.B16, V0.B16
	VST1.P	[V0.B16], 16(R2)
	SUB	$1, R4
	B	xe_tail
xe_done:
	STP	(R6, R7), (R5)
	RET

// func xtsDec(nr int, dk *byte, dst, src *byte, n int, tweak *[16]byte)
// n blocks of one data unit; *tweak is the encrypted tweak of block 0 and
// on return holds the tweak of block n. 8 blocks in flight: the tweaks of
// a group are computed in R6/R7 and kept in V8-V15 for the final xor.
TEXT ·xtsDec(SB), NOSPLIT, $0-48
	MOVD	nr+0(FP), R0
	MOVD	dk+8(FP), R1
	MOVD	dst+16(FP), R2
	MOVD	src+24(FP), R3
	MOVD	n+32(FP), R4
	MOVD	tweak+40(FP), R5
	LOADKEYS(R0, R1, xd_k128, xd_k192)
	LDP	(R5), (R6, R7)
	MOVD	$0x87, R9
xd_loop8:
	CMP	$8, R4
	BLT	xd_tail
	VLD1.P	64(R3), [V0.B16, V1.B16, V2.B16, V3.B16]
	VLD1.P	64(R3), [V4.B16, V5.B16, V6.B16, V7.B16]
	TWEAK(V8)
	TWEAK(V9)
	TWEAK(V10)
	TWEAK(V11)
	TWEAK(V12)
	TWEAK(V13)
	TWEAK(V14)
	TWEAK(V15)
	VEOR	V8.B16, V0.B16, V0.B16
	VEOR	V9.B16, V1.B16, V1.B16
	VEOR	V10.B16, V2.B16, V2.B16
	VEOR	V11.B16, V3.B16, V3.B16
	VEOR	V12.B16, V4.B16, V4.B16
	VEOR	V13.B16, V5.B16, V5.B16
	VEOR	V14.B16, V6.B16, V6.B16
	VEOR	V15.B16, V7.B16, V7.B16
	CMP	$12, R0
	BLT	xd8_r128
	BEQ	xd8_r192
	DEC8(V16)
	DEC8(V17)
xd8_r192:
	DEC8(V18)
	DEC8(V19)
xd8_r128:
	DEC8(V20)
	DEC8(V21)
	DEC8(V22)
	DEC8(V23)
	DEC8(V24)
	DEC8(V25)
	DEC8(V26)
	DEC8(V27)
	DEC8(V28)
	DECLAST8(V29)
	XORK8(V30)
	VEOR	V8.B16, V0.B16, V0.B16
	VEOR	V9.B16, V1.B16, V1.B16
	VEOR	V10.B16, V2.B16, V2.B16
	VEOR	V11.B16, V3.B16, V3.B16
	VEOR	V12.B16, V4.B16, V4.B16
	VEOR	V13.B16, V5.B16, V5.B16
	VEOR	V14.B16, V6.B16, V6.B16
	VEOR	V15.B16, V7.B16, V7.B16
	VST1.P	[V0.B16, V1.B16, V2.B16, V3.B16], 64(R2)
	VST1.P	[V4.B16, V5.B16, V6.B16, V7.B16], 64(R2)
	SUB	$8, R4
	B	xd_loop8
xd_tail:
	CBZ	R4, xd_done
	VLD1.P	16(R3), [V0.B16]
	TWEAK(V8)
	VEOR	V8.B16, V0.B16, V0.B16
	CMP	$12, R0
	BLT	xd1_r128
	BEQ	xd1_r192
	DEC1(V16)
	DEC1(V17)
xd1_r192:
	DEC1(V18)
	DEC1(V19)
xd1_r128:
	DEC1(V20)
	DEC1(V21)
	DEC1(V22)
	DEC1(V23)
	DEC1(V24)
	DEC1(V25)
	DEC1(V26)
	DEC1(V27)
	DEC1(V28)
	DECLAST1(V29)
	XORK1(V30)
	VEOR	V8.B16, V0.B16, V0.B16
	VST1.P	[V0.B16], 16(R2)
	SUB	$1, R4
	B	xd_tail
xd_done:
	STP	(R6, R7), (R5)
	RET

// func cbcEnc1(nr int, xk *byte, dst, src *byte, n int, iv *[16]byte)
TEXT ·cbcEnc1(SB), NOSPLIT, $0-48
	MOVD	nr+0(FP), R0
	MOVD	xk+8(FP), R1
	MOVD	dst+16(FP), R2
	MOVD	src+24(FP), R3
	MOVD	n+32(FP), R4
	MOVD	iv+40(FP), R5
	LOADKEYS(R0, R1, ce1_k128, ce1_k192)
	VLD1	(R5), [V0.B16]
	CBZ	R4, ce1_done
ce1_loop:
	VLD1.P	16(R3), [V8.B16]
	VEOR	V8.B16, V0.B16, V0.B16
	CMP	$12, R0
	BLT	ce1_r128
	BEQ	ce1_r192
	ENC1(V16)
	ENC1(V17)
ce1_r192:
	ENC1(V18)
	ENC1(V19)
ce1_r128:
	ENC1(V20)
	ENC1(V21)
	ENC1(V22)
	ENC1(V23)
	ENC1(V24)
	ENC1(V25)
	ENC1(V26)
	ENC1(V27)
	ENC1(V28)
	ENCLAST1(V29)
	XORK1(V30)
	VST1.P	[V0.B16], 16(R2)
	SUB	$1, R4
	CBNZ	R4, ce1_loop
ce1_done:
	RET

// func cbcEnc8(nr int, xk *byte, dst, src *byte, stride, n int, ivs *[8][16]byte)
// Eight chains at src + i*stride, n blocks each, one block of each chain
// per step (chain i in V<i>, its source and destination cursors in
// R5,R6,R7,R8,R9,R10,R11,R12 and R13,R14,R15,R16,R17,R19,R20,R21).
TEXT ·cbcEnc8(SB), NOSPLIT, $0-56
	MOVD	nr+0(FP), R0
	MOVD	xk+8(FP), R1
	MOVD	dst+16(FP), R2
	MOVD	src+24(FP), R3
	MOVD	stride+32(FP), R22
	MOVD	n+40(FP), R4
	MOVD	ivs+48(FP), R23
	LOADKEYS(R0, R1, ce8_k128, ce8_k192)
	VLD1.P	64(R23), [V0.B16, V1.B16, V2.B16, V3.B16]
	VLD1	(R23), [V4.B16, V5.B16, V6.B16, V7.B16]
	MOVD	R3, R5
	MOVD	R2, R13
	ADD	R22, R5, R6
	ADD	R22, R13, R14
	ADD	R22, R6, R7
	ADD	R22, R14, R15
	ADD	R22, R7, R8
	ADD	R22, R15, R16
	ADD	R22, R8, R9
	ADD	R22, R16, R17
	ADD	R22, R9, R10
	ADD	R22, R17, R19
	ADD	R22, R10, R11
	ADD	R22, R19, R20
	ADD	R22, R11, R12
	ADD	R22, R20, R21
	CBZ	R4, ce8_done
ce8_loop:
	VLD1.P	16(R5), [V8.B16]
	VLD1.P	16(R6), [V9.B16]
	VLD1.P	16(R7), [V10.B16]
	VLD1.P	16(R8), [V11.B16]
	VLD1.P	16(R9), [V12.B16]
	VLD1.P	16(R10), [V13.B16]
	VLD1.P	16(R11), [V14.B16]
	VLD1.P	16(R12), [V15.B16]
	VEOR	V8.B16, V0.B16, V0.B16
	VEOR	V9.B16, V1.B16, V1.B16
	VEOR	V10.B16, V2.B16, V2.B16
	VEOR	V11.B16, V3.B16, V3.B16
	VEOR	V12.B16, V4.B16, V4.B16
	VEOR	V13.B16, V5.B16, V5.B16
	VEOR	V14.B16, V6.B16, V6.B16
	VEOR	V15.B16, V7.B16, V7.B16
	CMP	$12, R0
	BLT	ce8_r128
	BEQ	ce8_r192
	ENC8(V16)
	ENC8(V17)
ce8_r192:
	ENC8(V18)
	ENC8(V19)
ce8_r128:
	ENC8(V20)
	ENC8(V21)
	ENC8(V22)
	ENC8(V23)
	ENC8(V24)
	ENC8(V25)
	ENC8(V26)
	ENC8(V27)
	ENC8(V28)
	ENCLAST8(V29)
	XORK8(V30)
	VST1.P	[V0.B16], 16(R13)
	VST1.P	[V1.B16], 16(R14)
	VST1.P	[V2.B16], 16(R15)
	VST1.P	[V3.B16], 16(R16)
	VST1.P	[V4.B16], 16(R17)
	VST1.P	[V5.B16], 16(R19)
	VST1.P	[V6.B16], 16(R20)
	VST1.P	[V7.B16], 16(R21)
	SUB	$1, R4
	CBNZ	R4, ce8_loop
ce8_done:
	RET

// func cbcDec(nr int, dk *byte, dst, src *byte, n int, iv *[16]byte)
// Within one chain: P_i = D(C_i) ^ C_{i-1}; 8 blocks in flight. A group's
// ciphertext is copied to V8-V15 before it is decrypted, so dst == src
// works.
TEXT ·cbcDec(SB), NOSPLIT, $0-48
	MOVD	nr+0(FP), R0
	MOVD	dk+8(FP), R1
	MOVD	dst+16(FP), R2
	MOVD	src+24(FP), R3
	MOVD	n+32(FP), R4
	MOVD	iv+40(FP), R5
	LOADKEYS(R0, R1, cd_k128, cd_k192)
	VLD1	(R5), [V31.B16]
cd_loop8:
	CMP	$8, R4
	BLT	cd_tail
	VLD1.P	64(R3), [V8.B16, V9.B16, V10.B16, V11.B16]
	VLD1.P	64(R3), [V12.B16, V13.B16, V14.B16, V15.B16]
	VMOV	V8.B16, V0.B16
	VMOV	V9.B16, V1.B16
	VMOV	V10.B16, V2.B16
	VMOV	V11.B16, V3.B16
	VMOV	V12.B16, V4.B16
	VMOV	V13.B16, V5.B16
	VMOV	V14.B16, V6.B16
	VMOV	V15.B16, V7.B16
	CMP	$12, R0
	BLT	cd8_r128
	BEQ	cd8_r192
	DEC8(V16)
	DEC8(V17)
cd8_r192:
	DEC8(V18)
	DEC8(V19)
cd8_r128:
	DEC8(V20)
	DEC8(V21)
	DEC8(V22)
	DEC8(V23)
	DEC8(V24)
	DEC8(V25)
	DEC8(V26)
	DEC8(V27)
	DEC8(V28)
	DECLAST8(V29)
	XORK8(V30)
	VEOR	V31.B16, V0.B16, V0.B16
	VEOR	V8.B16, V1.B16, V1.B16
	VEOR	V9.B16, V2.B16, V2.B16
	VEOR	V10.B16, V3.B16, V3.B16
	VEOR	V11.B16, V4.B16, V4.B16
	VEOR	V12.B16, V5.B16, V5.B16
	VEOR	V13.B16, V6.B16, V6.B16
	VEOR	V14.B16, V7.B16, V7.B16
	VMOV	V15.B16, V31.B16
	VST1.P	[V0.B16, V1.B16, V2.B16, V3.B16], 64(R2)
	VST1.P	[V4.B16, V5.B16, V6.B16, V7.B16], 64(R2)
	SUB	$8, R4
	B	cd_loop8
cd_tail:
	CBZ	R4, cd_done
	VLD1.P	16(R3), [V8.B16]
	VMOV	V8.B16, V0.B16
	CMP	$12, R0
	BLT	cd1_r128
	BEQ	cd1_r192
	DEC1(V16)
	DEC1(V17)
cd1_r192:
	DEC1(V18)
	DEC1(V19)
cd1_r128:
	DEC1(V20)
	DEC1(V21)
	DEC1(V22)
	DEC1(V23)
	DEC1(V24)
	DEC1(V25)
	DEC1(V26)
	DEC1(V27)
	DEC1(V28)
	DECLAST1(V29)
	XORK1(V30)
	VEOR	V31.B16, V0.B16, V0.B16
	VMOV	V8.B16, V31.B16
	VST1.P	[V0.B16], 16(R2)
	SUB	$1, R4
	B	cd_tail
cd_done:
	RET
