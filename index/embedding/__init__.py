"""Articles into vectors: the sentence-transformers encoder (or its ONNX export), passages
with sentence offsets, and the packed sentence vectors stored beside them."""
