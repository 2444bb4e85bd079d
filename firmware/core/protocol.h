/* The harness protocol, firmware side. Written down in full, with the host side, in
 * agents/mcu/__init__.py (lutfarm_agent.mcu): ASCII command lines, one reply line each,
 * "OK <COMMAND> ..." or "ERR <CODE> <message>". */
#ifndef LUTFARM_PROTOCOL_H_
#define LUTFARM_PROTOCOL_H_

#define LUTFARM_PROTO 1
#define LUTFARM_LINE_MAX 160   /* LOADF carries a host path */

#ifndef LUTFARM_MAX_MODEL
#error "the board's build sets LUTFARM_MAX_MODEL (bytes of model buffer)"
#endif
#ifndef LUTFARM_MAX_ARENA
#error "the board's build sets LUTFARM_MAX_ARENA (bytes of tensor arena)"
#endif
#ifndef LUTFARM_TFLM_VERSION
#define LUTFARM_TFLM_VERSION "unknown"
#endif

/* core/ops.cc: the op resolver (every op lutfarm's int8 exports use) and its names. */
namespace tflite { class MicroOpResolver; }
const tflite::MicroOpResolver& lutfarm_op_resolver();
const char* lutfarm_op_names();      /* comma-separated, as OPS replies */

#endif  /* LUTFARM_PROTOCOL_H_ */
