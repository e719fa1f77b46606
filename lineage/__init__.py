"""Lineage: where a trained model comes from and where it went, read across the apps' front
doors (tasks, evaluation, serving). It sits above those apps so that none of them imports
another to draw the graph."""
