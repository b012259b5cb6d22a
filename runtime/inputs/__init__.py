"""The input side: reading photos and label maps, extracting condition maps (edges, labels, face
contours, pose), and preprocessing them into what the graphs take."""
