"""Models across the lab's border: `export` takes a saved model out as .keras, ONNX or TFLite, checked in
the format's own runtime. (Bringing foreign models in belongs beside it, in its own module.)"""
