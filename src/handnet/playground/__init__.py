"""``handnet playground``: train handnet's networks in the browser and watch every step.

A local web page (TensorFlow Playground's idea, on handnet's own classes): pick a 2-D
data set and a network, press play, and watch the decision boundary, each hidden unit,
the weights, the loss curves and a step panel that shows the arrays of one training
step beside their formulas and the handnet functions that computed them.

The modules, one concern each; only :mod:`.server` imports the web libraries
(Starlette, uvicorn: ``pip install 'handnet[playground]'``), the rest is NumPy:

* :mod:`.data`: the 2-D data sets, the split and the input features;
* :mod:`.settings`: what the page may ask for, its limits and checks;
* :mod:`.sessions`: one tab's run (:class:`~.sessions.Session`) and the set of them;
* :mod:`.frames`: what a frame of the page holds;
* :mod:`.explain`: the step panel;
* :mod:`.script`: the take-home script that reproduces a run;
* :mod:`.server`: the ASGI app; ``static/``: the page.
"""
