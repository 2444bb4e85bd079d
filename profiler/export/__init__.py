"""Cases to model files: the content-addressed model cache and its exporter registry
(``cache``), the TFLite exporters (``tflite``), the export worker processes, and moving a
TFLite model's buffers (``tflite_flatbuffer``)."""
