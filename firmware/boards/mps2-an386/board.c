/* Arm MPS2 with FPGA image AN386: a Cortex-M4F at 25 MHz (QEMU's mps2-an386). */
#include "board.h"
#include "cmsdk_uart.h"

void systick_start(void);
uint32_t systick_ticks(void);

#define CLOCK_HZ 25000000u
#define UART0 ((CmsdkUart*)0x40004000u)

const BoardInfo kBoard = {"mps2-an386", "cortex-m4", CLOCK_HZ, "systick", CLOCK_HZ,
                          8u << 20, 4u << 20};

void board_init(void) {
  cmsdk_uart_init(UART0, CLOCK_HZ, 115200);
  systick_start();
}
int board_getc(void) { return cmsdk_uart_getc(UART0); }
void board_putc(char c) { cmsdk_uart_putc(UART0, c); }
uint32_t board_ticks(void) { return systick_ticks(); }
