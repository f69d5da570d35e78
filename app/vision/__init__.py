"""Photo → faces → vectors: detection, alignment, backbones and the embedder.

The vision core knows nothing of HTTP or storage: it takes decoded images and
returns typed detections, aligned chips and L2-normalised embeddings.
"""
