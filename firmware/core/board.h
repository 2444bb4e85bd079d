/* What a board file gives the portable core (core/main.cc): clocks, UART, a timer and its
 * description. A board file holds nothing else; the protocol, arena and model live in core/. */
#ifndef LUTFARM_BOARD_H_
#define LUTFARM_BOARD_H_

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
  const char* name;      /* e.g. "mps2-an386" */
  const char* core;      /* e.g. "cortex-m4" */
  uint32_t clock_hz;     /* the core's clock as the board sets it */
  const char* timer;     /* what board_ticks() reads: "systick", "dwt" */
  uint32_t timer_hz;     /* board_ticks() per second */
  uint32_t ram_bytes;    /* the board's SRAM and flash, for size checks */
  uint32_t flash_bytes;
} BoardInfo;

extern const BoardInfo kBoard;

void board_init(void);          /* clocks, UART, timer; interrupts may be enabled */
int board_getc(void);           /* blocking read of one byte from the host link */
void board_putc(char c);        /* blocking write of one byte */
uint32_t board_ticks(void);     /* free-running; differences wrap modulo 2^32 */

#ifdef __cplusplus
}
#endif

#endif  /* LUTFARM_BOARD_H_ */
