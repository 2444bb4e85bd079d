/* Arm's CMSDK APB UART (MPS2 and MPS3 FPGA images, and QEMU's models of them). */
#ifndef LUTFARM_CMSDK_UART_H_
#define LUTFARM_CMSDK_UART_H_
#include <stdint.h>

typedef struct {
  volatile uint32_t data;      /* 0x00 */
  volatile uint32_t state;     /* 0x04: bit 0 TX full, bit 1 RX full */
  volatile uint32_t ctrl;      /* 0x08: bit 0 TX enable, bit 1 RX enable */
  volatile uint32_t intstatus; /* 0x0C */
  volatile uint32_t bauddiv;   /* 0x10 */
} CmsdkUart;

static inline void cmsdk_uart_init(CmsdkUart* u, uint32_t pclk_hz, uint32_t baud) {
  u->bauddiv = pclk_hz / baud;
  u->ctrl = 3u;
}
static inline int cmsdk_uart_getc(CmsdkUart* u) {
  while (!(u->state & 2u)) { }
  return (int)(u->data & 0xFFu);
}
static inline void cmsdk_uart_putc(CmsdkUart* u, char c) {
  while (u->state & 1u) { }
  u->data = (uint8_t)c;
}
#endif
