# Cortex-M7 with double-precision FPU. The model is loaded over the UART into SRAM, so model
# buffer + arena + the firmware's own RAM must fit 320 KB (the linker checks it).
CPU_FLAGS      := -mcpu=cortex-m7 -mfpu=fpv5-d16 -mfloat-abi=hard -mthumb
BOARD_DEFS     := -DLUTFARM_MAX_MODEL=98304 -DLUTFARM_MAX_ARENA=184320
BOARD_SRCS     := boards/stm32f746g-disco/board.c
BOARD_INCLUDES :=
LDSCRIPT       := boards/stm32f746g-disco/board.ld
