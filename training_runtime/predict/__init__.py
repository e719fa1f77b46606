"""Prediction from exported artifacts: `Predictor` (batched, API-shaped) and Grad-CAM.

    predictor = Predictor.load("/artifacts/model-7", device="cpu")
    predictor.predict([image], top_k=3, min_score=0.1)
    heatmap = gradcam(predictor, image)        # HxW floats in [0, 1], classification only
"""

from training_runtime.predict.gradcam import gradcam, last_conv
from training_runtime.predict.inputs import InvalidImageError
from training_runtime.predict.predictor import Predictor, encode_mask

__all__ = ["InvalidImageError", "Predictor", "encode_mask", "gradcam", "last_conv"]
