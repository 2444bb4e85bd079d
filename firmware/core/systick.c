/* A 32-bit tick counter from the 24-bit SysTick: the core clock, counted down from 2^24 - 1,
 * its wraps counted by interrupt. Under QEMU with -icount the core clock is virtual time
 * driven by the instruction count, so the same code gives the same ticks on every run. */
#include <stdint.h>

#define SYST_CSR (*(volatile uint32_t*)0xE000E010u)
#define SYST_RVR (*(volatile uint32_t*)0xE000E014u)
#define SYST_CVR (*(volatile uint32_t*)0xE000E018u)
#define SCB_ICSR (*(volatile uint32_t*)0xE000ED04u)
#define RELOAD 0x00FFFFFFu

static volatile uint32_t g_wraps;

void SysTick_Handler(void) { g_wraps++; }

void systick_start(void) {
  SYST_RVR = RELOAD;
  SYST_CVR = 0;
  SYST_CSR = 7u;   /* core clock, interrupt, enable */
  __asm volatile("cpsie i" ::: "memory");
}

uint32_t systick_ticks(void) {
  for (;;) {
    uint32_t w0 = g_wraps;
    uint32_t v = SYST_CVR;
    uint32_t w1 = g_wraps;
    if (w0 != w1) continue;
    /* wrapped after w0 was read but its interrupt not yet taken */
    if ((SCB_ICSR & (1u << 26)) && v > RELOAD / 2) w0++;
    return w0 * (RELOAD + 1u) + (RELOAD - v);
  }
}
