// lutfarm's TFLite-Micro benchmark firmware: the portable core. It speaks the harness
// protocol of agents/mcu/__init__.py on the board's UART: HELLO, OPS, LOAD (model bytes +
// CRC-32 into a static buffer), ARENA (an interpreter in the first N bytes of a static arena),
// RUN (invoke, timed by the board's own timer, so the serial link never enters a latency),
// PROF (one invoke timed op by op through TFLite-Micro's profiler interface).
#include <new>
#include <stdio.h>
#include <string.h>

#include "board.h"
#include "protocol.h"
#include "tensorflow/lite/micro/arena_allocator/single_arena_buffer_allocator.h"
#include "tensorflow/lite/micro/memory_helpers.h"
#include "tensorflow/lite/micro/micro_arena_constants.h"
#include "tensorflow/lite/micro/memory_planner/greedy_memory_planner.h"
#include "tensorflow/lite/micro/micro_allocator.h"
#include "tensorflow/lite/micro/micro_interpreter.h"
#include "tensorflow/lite/micro/micro_op_resolver.h"
#include "tensorflow/lite/micro/micro_profiler_interface.h"
#include "tensorflow/lite/micro/micro_time.h"
#include "tensorflow/lite/schema/schema_generated.h"

// Placed by the board's linker script (sections.ld): NOLOAD, so a reset does not clear them.
alignas(16) static uint8_t g_model[LUTFARM_MAX_MODEL] __attribute__((section(".model")));
alignas(16) static uint8_t g_arena[LUTFARM_MAX_ARENA] __attribute__((section(".arena")));

extern "C" {
extern const char __text_start__[], __text_end__[], __data_start__[], __data_end__[],
    __bss_start__[], __bss_end__[], __stack_size__[];
}

namespace tflite {
uint32_t ticks_per_second() { return kBoard.timer_hz; }
uint32_t GetCurrentTimeTicks() { return board_ticks(); }
}  // namespace tflite

namespace {

char g_log[120];     // TFLite-Micro's last log line: the reason an ERR reply gives
uint32_t g_model_len = 0;
uint32_t g_model_crc = 0;
alignas(tflite::MicroInterpreter) uint8_t g_interp_storage[sizeof(tflite::MicroInterpreter)];
tflite::MicroInterpreter* g_interp = nullptr;
tflite::SingleArenaBufferAllocator* g_buffers = nullptr;   // the arena's two ends, for ARENA

// The interpreter's profiler (MicroProfiler's role, in a fixed table): TFLite-Micro calls it
// around every op's Invoke. Off, it returns at once (two virtual calls per op, tens of
// cycles against an op's thousands); PROF turns it on for one invoke.
class OpTimer : public tflite::MicroProfilerInterface {
 public:
  static constexpr uint32_t kMax = 128;      // ops of one invoke it keeps
  bool on = false;
  uint32_t count = 0;
  const char* tags[kMax];
  uint32_t ticks[kMax];

  uint32_t BeginEvent(const char* tag) override {
    if (!on || count >= kMax) return kMax;
    tags[count] = tag;
    ticks[count] = board_ticks();
    return count++;
  }
  void EndEvent(uint32_t handle) override {
    if (handle < kMax) ticks[handle] = board_ticks() - ticks[handle];
  }
};
OpTimer g_timer;

void put(const char* s) {
  while (*s) board_putc(*s++);
}

void reply(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
void reply(const char* fmt, ...) {
  char line[400];
  va_list args;
  va_start(args, fmt);
  vsnprintf(line, sizeof line, fmt, args);
  va_end(args);
  put(line);
  board_putc('\n');
}

// The log line without newlines or characters a reply line cannot carry.
const char* last_log() {
  for (char* p = g_log; *p; ++p) {
    if (*p == '\n' || *p == '\r') *p = ' ';
  }
  return g_log[0] ? g_log : "no reason logged";
}

uint32_t crc32(const uint8_t* data, uint32_t n) {   // zlib's CRC-32, a nibble at a time
  static const uint32_t table[16] = {
      0x00000000, 0x1DB71064, 0x3B6E20C8, 0x26D930AC, 0x76DC4190, 0x6B6B51F4,
      0x4DB26158, 0x5005713C, 0xEDB88320, 0xF00F9344, 0xD6D6A3E8, 0xCB61B38C,
      0x9B64C2B0, 0x86D3D2D4, 0xA00AE278, 0xBDBDF21C};
  uint32_t crc = 0xFFFFFFFFu;
  for (uint32_t i = 0; i < n; ++i) {
    crc ^= data[i];
    crc = (crc >> 4) ^ table[crc & 15];
    crc = (crc >> 4) ^ table[crc & 15];
  }
  return ~crc;
}

int read_line(char* buf, int cap) {
  int n = 0;
  for (;;) {
    int c = board_getc();
    if (c == '\n') break;
    if (c == '\r') continue;
    if (n < cap - 1) buf[n++] = static_cast<char>(c);
  }
  buf[n] = 0;
  return n;
}

void drop_interpreter() {
  if (g_interp != nullptr) {
    g_interp->~MicroInterpreter();
    g_interp = nullptr;
  }
}

#ifdef LUTFARM_SEMIHOSTING
constexpr int kHostFs = 1;
#else
constexpr int kHostFs = 0;
#endif

void cmd_hello() {
  unsigned text = __text_end__ - __text_start__;
  unsigned data = __data_end__ - __data_start__;
  unsigned bss = __bss_end__ - __bss_start__;
  reply("OK HELLO proto=%d board=%s core=%s runtime=tflite-micro-%s kernels=%s clock_hz=%lu "
        "timer=%s timer_hz=%lu max_model=%u max_arena=%u fw_text=%u fw_data=%u fw_bss=%u "
        "fw_stack=%u ram=%lu flash=%lu hostfs=%d",
        LUTFARM_PROTO, kBoard.name, kBoard.core, LUTFARM_TFLM_VERSION, LUTFARM_KERNELS,
        (unsigned long)kBoard.clock_hz, kBoard.timer, (unsigned long)kBoard.timer_hz,
        (unsigned)LUTFARM_MAX_MODEL, (unsigned)LUTFARM_MAX_ARENA, text, data, bss,
        (unsigned)(uintptr_t)__stack_size__, (unsigned long)kBoard.ram_bytes,
        (unsigned long)kBoard.flash_bytes, kHostFs);
}

void cmd_ops() {
  char names[512];
  strncpy(names, lutfarm_op_names(), sizeof names - 1);
  names[sizeof names - 1] = 0;
  size_t n = strlen(names);
  if (n && names[n - 1] == ',') names[n - 1] = 0;
  put("OK OPS ");
  put(names);
  board_putc('\n');
}

void loaded(unsigned long n, unsigned long crc, const char* cmd) {   // the bytes are in g_model
  uint32_t got = crc32(g_model, n);
  if (got != crc) {
    reply("ERR CRC model bytes give %08lx, the host said %08lx", (unsigned long)got, crc);
    return;
  }
  flatbuffers::Verifier verifier(g_model, n);
  if (!tflite::VerifyModelBuffer(verifier)) {
    reply("ERR MODEL the %lu bytes are not a TFLite flatbuffer", n);
    return;
  }
  g_model_len = n;
  g_model_crc = got;
  reply("OK %s %lu", cmd, n);
}

void cmd_load(unsigned long n, unsigned long crc) {
  drop_interpreter();
  g_model_len = 0;
  if (n > LUTFARM_MAX_MODEL) {   // the bytes follow the line anyway: take them, keep nothing
    for (unsigned long i = 0; i < n; ++i) board_getc();
    reply("ERR SIZE model of %lu bytes exceeds this board's %u", n, (unsigned)LUTFARM_MAX_MODEL);
    return;
  }
  for (unsigned long i = 0; i < n; ++i) g_model[i] = static_cast<uint8_t>(board_getc());
  loaded(n, crc, "LOAD");
}

#ifdef LUTFARM_SEMIHOSTING
// Emulated boards only: ARM semihosting (QEMU -semihosting-config enable=on,target=native)
// reads a model file on the host straight into the model buffer, where the emulated UART
// moves about 20 KiB/s. On silicon without a debugger BKPT faults: no board file for real
// hardware defines LUTFARM_SEMIHOSTING, and the host only sends LOADF when HELLO says hostfs=1.
int semihost(int op, void* args) {
  register int r0 __asm__("r0") = op;
  register void* r1 __asm__("r1") = args;
  __asm__ volatile("bkpt 0xAB" : "+r"(r0) : "r"(r1) : "memory");
  return r0;
}

void cmd_loadf(unsigned long n, unsigned long crc, const char* path) {
  drop_interpreter();
  g_model_len = 0;
  if (n > LUTFARM_MAX_MODEL) {
    reply("ERR SIZE model of %lu bytes exceeds this board's %u", n, (unsigned)LUTFARM_MAX_MODEL);
    return;
  }
  uint32_t open_args[3] = {(uint32_t)(uintptr_t)path, 1 /* "rb" */, (uint32_t)strlen(path)};
  int handle = semihost(0x01 /* SYS_OPEN */, open_args);
  if (handle == -1) {
    reply("ERR LOAD the host file %s cannot be opened", path);
    return;
  }
  uint32_t read_args[3] = {(uint32_t)handle, (uint32_t)(uintptr_t)g_model, (uint32_t)n};
  int left = semihost(0x06 /* SYS_READ: returns the bytes not read */, read_args);
  uint32_t close_args[1] = {(uint32_t)handle};
  semihost(0x02 /* SYS_CLOSE */, close_args);
  if (left != 0) {
    reply("ERR LOAD the host file %s holds %lu of %lu bytes", path, n - (unsigned long)left, n);
    return;
  }
  loaded(n, crc, "LOADF");
}
#endif

void fill_inputs() {   // deterministic pseudo-random inputs, as the host runtimes use
  uint32_t state = 0x12345678u;
  for (size_t i = 0; i < g_interp->inputs_size(); ++i) {
    TfLiteTensor* t = g_interp->input(i);
    uint8_t* p = t->data.uint8;
    for (size_t b = 0; b < t->bytes; ++b) {
      state = state * 1664525u + 1013904223u;
      p[b] = static_cast<uint8_t>(state >> 24);
    }
    if (t->type == kTfLiteFloat32) {   // small finite floats, not random bit patterns
      for (size_t k = 0; k < t->bytes / 4; ++k) t->data.f[k] = (int)(k % 17) * 0.0625f - 0.5f;
    }
  }
}

void cmd_arena(unsigned long size) {
  drop_interpreter();
  if (g_model_len == 0) {
    reply("ERR NOMODEL send LOAD first");
    return;
  }
  if (size > LUTFARM_MAX_ARENA) {
    reply("ERR ARENA %lu bytes exceed this board's %u", size, (unsigned)LUTFARM_MAX_ARENA);
    return;
  }
  // TFLite-Micro places its own allocator and planner in the arena without checking that they
  // fit (a smaller arena runs off into memory that is not there): refuse such sizes here.
  constexpr size_t kMinArena = sizeof(tflite::SingleArenaBufferAllocator) +
                               sizeof(tflite::GreedyMemoryPlanner) +
                               sizeof(tflite::MicroAllocator) + 256;
  if (size < kMinArena) {
    reply("ERR ARENA %lu bytes are below the %u the interpreter's bookkeeping needs", size,
          (unsigned)kMinArena);
    return;
  }
#ifdef LUTFARM_HANG_ON_CRC   // fault injection for the host's tests: never built by default
  if (g_model_crc == (uint32_t)LUTFARM_HANG_ON_CRC) {
    *reinterpret_cast<volatile uint32_t*>(0xFFFFFFF0u) = 1;   // a bus fault -> HardFault
  }
#endif
  const tflite::Model* model = tflite::GetModel(g_model);
  if (model->version() != TFLITE_SCHEMA_VERSION) {
    reply("ERR MODEL schema version %lu, the firmware reads %d",
          (unsigned long)model->version(), TFLITE_SCHEMA_VERSION);
    return;
  }
  const tflite::MicroOpResolver& resolver = lutfarm_op_resolver();
  if (model->operator_codes() != nullptr) {
    for (const tflite::OperatorCode* code : *model->operator_codes()) {
      auto op = static_cast<tflite::BuiltinOperator>(
          code->builtin_code() > code->deprecated_builtin_code()
              ? code->builtin_code() : code->deprecated_builtin_code());
      if (op == tflite::BuiltinOperator_CUSTOM) {
        const char* name = code->custom_code() ? code->custom_code()->c_str() : "CUSTOM";
        if (resolver.FindOp(name) == nullptr) {
          reply("ERR OP %s", name);
          return;
        }
      } else if (resolver.FindOp(op) == nullptr) {
        reply("ERR OP %s", tflite::EnumNameBuiltinOperator(op));
        return;
      }
    }
  }
  g_log[0] = 0;
  // MicroAllocator::Create(arena, size)'s own chain, built here so that ARENA can say how much
  // of the arena is persistent (interpreter, tensors, per-op data: it adds up over a network's
  // ops) and how much the activation plan takes (the largest live set: it does not)
  uint8_t* aligned = tflite::AlignPointerUp(g_arena, tflite::MicroArenaBufferAlignment());
  g_buffers = tflite::SingleArenaBufferAllocator::Create(aligned, g_arena + size - aligned);
  uint8_t* planner_buffer = g_buffers->AllocatePersistentBuffer(
      sizeof(tflite::GreedyMemoryPlanner), alignof(tflite::GreedyMemoryPlanner));
  auto* planner = new (planner_buffer) tflite::GreedyMemoryPlanner();
  tflite::MicroAllocator* allocator = tflite::MicroAllocator::Create(g_buffers, planner);
  g_interp = new (g_interp_storage)
      tflite::MicroInterpreter(model, resolver, allocator, nullptr, &g_timer);
  if (g_interp->AllocateTensors() != kTfLiteOk) {
    drop_interpreter();
    reply("ERR ARENA %s", last_log());
    return;
  }
  fill_inputs();
  reply("OK ARENA %lu used=%u persistent=%u", size, (unsigned)g_interp->arena_used_bytes(),
        (unsigned)g_buffers->GetPersistentUsedBytes());
}

void cmd_run(unsigned long n) {
  if (g_interp == nullptr) {
    reply("ERR NOMODEL no interpreter: send LOAD and ARENA first");
    return;
  }
  if (n < 1 || n > 16) {
    reply("ERR CMD RUN takes 1 to 16 invokes");
    return;
  }
  uint32_t ticks[16];
  g_log[0] = 0;
  for (unsigned long i = 0; i < n; ++i) {
    uint32_t t0 = board_ticks();
    TfLiteStatus status = g_interp->Invoke();
    ticks[i] = board_ticks() - t0;
    if (status != kTfLiteOk) {
      reply("ERR RUN invoke failed: %s", last_log());
      return;
    }
  }
  char us[16 * 12], tk[16 * 12];
  int pu = 0, pt = 0;
  for (unsigned long i = 0; i < n; ++i) {
    unsigned long long micro = (unsigned long long)ticks[i] * 1000000ull / kBoard.timer_hz;
    pu += snprintf(us + pu, sizeof us - pu, "%s%lu", i ? "," : "", (unsigned long)micro);
    pt += snprintf(tk + pt, sizeof tk - pt, "%s%lu", i ? "," : "", (unsigned long)ticks[i]);
  }
  reply("OK RUN %lu us=%s ticks=%s", n, us, tk);
}

// PROF <first>: with first 0, one invoke timed op by op; every PROF replies with the ops
// from <first> on, a few per line (a reply line holds 400 characters):
// OK PROF <ops> <first> <TAG>=<ticks>,<TAG>=<ticks>,...
void cmd_prof(unsigned long first) {
  if (g_interp == nullptr) {
    reply("ERR NOMODEL no interpreter: send LOAD and ARENA first");
    return;
  }
  if (first == 0) {
    g_timer.count = 0;
    g_timer.on = true;
    g_log[0] = 0;
    TfLiteStatus status = g_interp->Invoke();
    g_timer.on = false;
    if (status != kTfLiteOk) {
      reply("ERR RUN invoke failed: %s", last_log());
      return;
    }
  }
  char list[320];
  int used = 0;
  unsigned long i = first;
  for (; i < g_timer.count && i < first + 8; ++i) {
    used += snprintf(list + used, sizeof list - used, "%s%.24s=%lu", i > first ? "," : "",
                     g_timer.tags[i] ? g_timer.tags[i] : "?", (unsigned long)g_timer.ticks[i]);
  }
  list[used] = 0;
  reply("OK PROF %lu %lu %s", (unsigned long)g_timer.count, first, list);
}

void dispatch(char* line) {
  char* cmd = strtok(line, " ");
  if (cmd == nullptr) return;   // an empty line gets no reply
  char* a1 = strtok(nullptr, " ");
  char* a2 = strtok(nullptr, " ");
  if (!strcmp(cmd, "HELLO")) {
    cmd_hello();
  } else if (!strcmp(cmd, "OPS")) {
    cmd_ops();
  } else if (!strcmp(cmd, "LOAD") && a1 && a2) {
    cmd_load(strtoul(a1, nullptr, 10), strtoul(a2, nullptr, 16));
#ifdef LUTFARM_SEMIHOSTING
  } else if (!strcmp(cmd, "LOADF") && a1 && a2) {
    char* path = strtok(nullptr, " ");
    if (path == nullptr) {
      reply("ERR CMD LOADF takes <bytes> <crc32> <host path>");
      return;
    }
    cmd_loadf(strtoul(a1, nullptr, 10), strtoul(a2, nullptr, 16), path);
#endif
  } else if (!strcmp(cmd, "ARENA") && a1) {
    cmd_arena(strtoul(a1, nullptr, 10));
  } else if (!strcmp(cmd, "RUN") && a1) {
    cmd_run(strtoul(a1, nullptr, 10));
  } else if (!strcmp(cmd, "PROF") && a1) {
    cmd_prof(strtoul(a1, nullptr, 10));
  } else if (!strcmp(cmd, "LOAD") || !strcmp(cmd, "ARENA") || !strcmp(cmd, "RUN")) {
    reply("ERR CMD bad arguments to %s", cmd);
  } else {
    reply("ERR CMD unknown command %s", cmd);
  }
}

}  // namespace

extern "C" void DebugLog(const char* format, va_list args) {
  size_t used = strlen(g_log);       // the first lines are the cause: keep them
  if (used >= sizeof g_log - 8) return;
  vsnprintf(g_log + used, sizeof g_log - used, format, args);
}

extern "C" int DebugVsnprintf(char* buffer, size_t size, const char* format, va_list args) {
  return vsnprintf(buffer, size, format, args);
}

int main() {
  board_init();
  char line[LUTFARM_LINE_MAX];
  for (;;) {
    read_line(line, sizeof line);
    dispatch(line);
  }
}
