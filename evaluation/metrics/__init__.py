"""Pure metrics (numpy only; no Django, no torch): COCO detection and classification."""
