/* A Cortex-M reset path shared by every board: vector table, .data copy, .bss clear, FPU
 * (and Helium, which shares its enable bits) on, C++ constructors, main(). Faults stop the
 * core in a loop: the host sees no reply and restarts the board (lutfarm_agent.mcu). */
#include <stdint.h>

extern uint32_t __etext_data__, __data_start__, __data_end__, __bss_start__, __bss_end__;
extern uint32_t __StackTop;
extern void __libc_init_array(void);
extern int main(void);

void Reset_Handler(void);
void Default_Handler(void) { for (;;) { } }
void HardFault_Handler(void) { for (;;) { } }
void NMI_Handler(void) __attribute__((weak, alias("Default_Handler")));
void MemManage_Handler(void) __attribute__((weak, alias("HardFault_Handler")));
void BusFault_Handler(void) __attribute__((weak, alias("HardFault_Handler")));
void UsageFault_Handler(void) __attribute__((weak, alias("HardFault_Handler")));
void SecureFault_Handler(void) __attribute__((weak, alias("HardFault_Handler")));
void SVC_Handler(void) __attribute__((weak, alias("Default_Handler")));
void DebugMon_Handler(void) __attribute__((weak, alias("Default_Handler")));
void PendSV_Handler(void) __attribute__((weak, alias("Default_Handler")));
void SysTick_Handler(void) __attribute__((weak, alias("Default_Handler")));

__attribute__((section(".vectors"), used)) void (*const g_vectors[16 + 32])(void) = {
    (void (*)(void))(&__StackTop), Reset_Handler, NMI_Handler, HardFault_Handler,
    MemManage_Handler, BusFault_Handler, UsageFault_Handler, SecureFault_Handler,
    0, 0, 0, SVC_Handler, DebugMon_Handler, 0, PendSV_Handler, SysTick_Handler,
    /* external interrupts: none used */
};

#define SCB_CPACR (*(volatile uint32_t*)0xE000ED88u)
#define SCB_VTOR (*(volatile uint32_t*)0xE000ED08u)
#define SCB_SHCSR (*(volatile uint32_t*)0xE000ED24u)

void Reset_Handler(void) {
  SCB_VTOR = (uint32_t)(uintptr_t)g_vectors;
  SCB_CPACR |= (0xFu << 20);                       /* CP10, CP11: FPU and MVE */
  __asm volatile("dsb\n isb" ::: "memory");
  SCB_SHCSR |= (7u << 16);                         /* separate Mem/Bus/Usage faults */
  uint32_t* src = &__etext_data__;
  for (uint32_t* dst = &__data_start__; dst < &__data_end__;) *dst++ = *src++;
  for (uint32_t* dst = &__bss_start__; dst < &__bss_end__;) *dst++ = 0;
  __libc_init_array();
  main();
  for (;;) { }
}
