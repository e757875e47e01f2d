"""The crop reviewer: editing and decisions without widgets (session, editor, queue, others), pure coordinate
maths (viewport), image I/O (pictures), drawing (paint), the widget that wires events to them, and start."""
