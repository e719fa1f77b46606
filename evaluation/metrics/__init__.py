"""Pure metrics (numpy only; no Django, no torch): COCO detection/segmentation and classification."""
