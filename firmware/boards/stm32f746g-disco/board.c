/* ST's STM32F746G-DISCO (MCUNet's board): a Cortex-M7 at 216 MHz, 320 KB SRAM, 1 MB flash.
 * The host link is USART1 on PA9/PB7, which the board's ST-LINK bridges to a USB virtual COM
 * port; the timer is the core's DWT cycle counter. BUILT IN CI, NEVER RUN ON SILICON HERE.
 * Registers by address (RM0385): the TFLite-Micro tree's CMSIS core lacks the m-profile
 * headers that ST's stm32f746xx.h needs through core_cm7.h. Caches stay off (no CMSIS SCB
 * helpers): timings on silicon would be slower than with them on. */
#include "board.h"

#define REG(addr) (*(volatile uint32_t*)(addr))
#define RCC_CR REG(0x40023800u)
#define RCC_PLLCFGR REG(0x40023804u)
#define RCC_CFGR REG(0x40023808u)
#define RCC_AHB1ENR REG(0x40023830u)
#define RCC_APB1ENR REG(0x40023840u)
#define RCC_APB2ENR REG(0x40023844u)
#define PWR_CR1 REG(0x40007000u)
#define PWR_CSR1 REG(0x40007004u)
#define FLASH_ACR REG(0x40023C00u)
#define GPIOA_MODER REG(0x40020000u)
#define GPIOA_AFRH REG(0x40020024u)
#define GPIOB_MODER REG(0x40020400u)
#define GPIOB_AFRL REG(0x40020420u)
#define USART1_CR1 REG(0x40011000u)
#define USART1_BRR REG(0x4001100Cu)
#define USART1_ISR REG(0x4001101Cu)
#define USART1_ICR REG(0x40011020u)
#define USART1_RDR REG(0x40011024u)
#define USART1_TDR REG(0x40011028u)
#define DEMCR REG(0xE000EDFCu)
#define DWT_CTRL REG(0xE0001000u)
#define DWT_CYCCNT REG(0xE0001004u)
#define DWT_LAR REG(0xE0001FB0u)

#define CLOCK_HZ 216000000u
#define APB2_HZ (CLOCK_HZ / 2u)
#define BAUD 115200u

const BoardInfo kBoard = {"stm32f746g-disco", "cortex-m7", CLOCK_HZ, "dwt", CLOCK_HZ,
                          320u << 10, 1u << 20};

static void clock_216mhz(void) {
  /* HSE 25 MHz (the ST-LINK's MCO, bypass) -> PLL /25 *432 /2 = 216 MHz, over-drive, 7 WS */
  RCC_APB1ENR |= 1u << 28;                            /* PWREN */
  PWR_CR1 |= 3u << 14;                                /* VOS scale 1 */
  RCC_CR |= (1u << 16) | (1u << 18);                  /* HSEON, HSEBYP */
  while (!(RCC_CR & (1u << 17))) { }
  RCC_PLLCFGR = 25u | (432u << 6) | (0u << 16) | (1u << 22) | (9u << 24);
  RCC_CR |= 1u << 24;                                 /* PLLON */
  PWR_CR1 |= 1u << 16;                                /* ODEN */
  while (!(PWR_CSR1 & (1u << 16))) { }
  PWR_CR1 |= 1u << 17;                                /* ODSWEN */
  while (!(PWR_CSR1 & (1u << 17))) { }
  FLASH_ACR = 7u | (1u << 8) | (1u << 9);             /* 7 wait states, prefetch, ART */
  while (!(RCC_CR & (1u << 25))) { }
  RCC_CFGR = (5u << 10) | (4u << 13) | 2u;            /* APB1 /4, APB2 /2, SYSCLK = PLL */
  while ((RCC_CFGR & (3u << 2)) != (2u << 2)) { }
}

static void usart1_init(void) {
  RCC_AHB1ENR |= 3u;                                  /* GPIOA, GPIOB */
  RCC_APB2ENR |= 1u << 4;                             /* USART1 */
  GPIOA_MODER = (GPIOA_MODER & ~(3u << 18)) | (2u << 18);     /* PA9: AF7 = USART1_TX */
  GPIOA_AFRH = (GPIOA_AFRH & ~(0xFu << 4)) | (7u << 4);
  GPIOB_MODER = (GPIOB_MODER & ~(3u << 14)) | (2u << 14);     /* PB7: AF7 = USART1_RX */
  GPIOB_AFRL = (GPIOB_AFRL & ~(0xFu << 28)) | (7u << 28);
  USART1_BRR = (APB2_HZ + BAUD / 2u) / BAUD;
  USART1_CR1 = (1u << 3) | (1u << 2) | 1u;            /* TE, RE, UE */
}

void board_init(void) {
  clock_216mhz();
  usart1_init();
  DEMCR |= 1u << 24;                                  /* TRCENA */
  DWT_LAR = 0xC5ACCE55u;                              /* the M7's DWT is locked until then */
  DWT_CYCCNT = 0;
  DWT_CTRL |= 1u;
}

int board_getc(void) {
  for (;;) {
    uint32_t isr = USART1_ISR;
    if (isr & (1u << 3)) USART1_ICR = 1u << 3;        /* overrun: bytes lost, the CRC says so */
    if (isr & (1u << 5)) return (int)(USART1_RDR & 0xFFu);
  }
}
void board_putc(char c) {
  while (!(USART1_ISR & (1u << 7))) { }
  USART1_TDR = (uint8_t)c;
}
uint32_t board_ticks(void) { return DWT_CYCCNT; }
