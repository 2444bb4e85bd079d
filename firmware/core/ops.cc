// The ops the firmware can run: every builtin that lutfarm's int8 TFLite exports of the FBNet,
// MCUNet and NB201 cases use (tests/test_firmware.py checks this claim against the exports,
// through the OPS command), plus the few a whole exported network adds (softmax, mean).
#include "protocol.h"
#include "tensorflow/lite/micro/micro_mutable_op_resolver.h"

namespace {

#define LUTFARM_OPS(X)                                                                 \
  X(AddConv2D, "CONV_2D") X(AddDepthwiseConv2D, "DEPTHWISE_CONV_2D")                   \
  X(AddFullyConnected, "FULLY_CONNECTED") X(AddAdd, "ADD") X(AddMul, "MUL")           \
  X(AddSub, "SUB") X(AddAveragePool2D, "AVERAGE_POOL_2D")                              \
  X(AddMaxPool2D, "MAX_POOL_2D") X(AddMean, "MEAN") X(AddSum, "SUM")                  \
  X(AddReshape, "RESHAPE") X(AddSqueeze, "SQUEEZE") X(AddSoftmax, "SOFTMAX")          \
  X(AddQuantize, "QUANTIZE") X(AddDequantize, "DEQUANTIZE") X(AddPad, "PAD")          \
  X(AddPadV2, "PADV2") X(AddConcatenation, "CONCATENATION") X(AddRelu, "RELU")        \
  X(AddRelu6, "RELU6") X(AddHardSwish, "HARD_SWISH") X(AddLogistic, "LOGISTIC")       \
  X(AddTranspose, "TRANSPOSE") X(AddStridedSlice, "STRIDED_SLICE")

#define LUTFARM_COUNT(fn, name) +1
constexpr int kNumOps = 0 LUTFARM_OPS(LUTFARM_COUNT);
#define LUTFARM_NAME(fn, name) name ","
constexpr char kNames[] = LUTFARM_OPS(LUTFARM_NAME);

using Resolver = tflite::MicroMutableOpResolver<kNumOps>;
alignas(Resolver) unsigned char resolver_storage[sizeof(Resolver)];
Resolver* resolver = nullptr;

}  // namespace

const tflite::MicroOpResolver& lutfarm_op_resolver() {
  if (resolver == nullptr) {
    resolver = new (resolver_storage) Resolver();
#define LUTFARM_ADD(fn, name) resolver->fn();
    LUTFARM_OPS(LUTFARM_ADD)
  }
  return *resolver;
}

const char* lutfarm_op_names() { return kNames; }  // ends with a comma; main.cc trims it
