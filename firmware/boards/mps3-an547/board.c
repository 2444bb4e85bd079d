/* Arm MPS3 with FPGA image AN547 (Corstone SSE-300): a Cortex-M55 with Helium (MVE) at
 * 32 MHz (QEMU's mps3-an547). The core starts in the Secure state: the secure aliases. */
#include "board.h"
#include "cmsdk_uart.h"

void systick_start(void);
uint32_t systick_ticks(void);

#define CLOCK_HZ 32000000u
#define UART0 ((CmsdkUart*)0x59303000u)

const BoardInfo kBoard = {"mps3-an547", "cortex-m55", CLOCK_HZ, "systick", CLOCK_HZ,
                          5u << 20, 512u << 10};

void board_init(void) {
  cmsdk_uart_init(UART0, 25000000u, 115200);
  systick_start();
}
int board_getc(void) { return cmsdk_uart_getc(UART0); }
void board_putc(char c) { cmsdk_uart_putc(UART0, c); }
uint32_t board_ticks(void) { return systick_ticks(); }
