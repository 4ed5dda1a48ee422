"""The verdict on a reproduction: reading runs, comparing cells, deciding claims.

NumPy only: nothing here imports matplotlib, Theano or the drawing modules of
:mod:`plots`, which import from here.
"""
