# Cortex-M55 with Helium (MVE, integer and float): CMSIS-NN takes its MVE paths.
CPU_FLAGS      := -mcpu=cortex-m55 -mfloat-abi=hard -mthumb
BOARD_DEFS     := -DLUTFARM_MAX_MODEL=1572864 -DLUTFARM_MAX_ARENA=2097152
# Emulated only: models may come from a host file (ARM semihosting), see core/main.cc LOADF
BOARD_APP_DEFS := -DLUTFARM_SEMIHOSTING
BOARD_SRCS     := boards/mps3-an547/board.c core/systick.c
BOARD_INCLUDES := -Iboards/common
LDSCRIPT       := boards/mps3-an547/board.ld
QEMU_MACHINE   := mps3-an547
