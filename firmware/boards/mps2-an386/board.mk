# Cortex-M4 with single-precision FPU; CMSIS-NN takes its DSP (SIMD) paths.
CPU_FLAGS      := -mcpu=cortex-m4 -mfpu=fpv4-sp-d16 -mfloat-abi=hard -mthumb
BOARD_DEFS     := -DLUTFARM_MAX_MODEL=1572864 -DLUTFARM_MAX_ARENA=2097152
# Emulated only: models may come from a host file (ARM semihosting), see core/main.cc LOADF
BOARD_APP_DEFS := -DLUTFARM_SEMIHOSTING
BOARD_SRCS     := boards/mps2-an386/board.c core/systick.c
BOARD_INCLUDES := -Iboards/common
LDSCRIPT       := boards/mps2-an386/board.ld
QEMU_MACHINE   := mps2-an386
