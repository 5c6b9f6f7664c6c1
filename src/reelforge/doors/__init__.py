"""Front doors: one package per vendor protocol that reelforge speaks.

A door owns its router, its protocol models, the translation to and from the request
``generations.Generations.submit`` takes, its error shape and its ids. It sits beside
``api`` (layer 5) and imports nothing of it: what it needs from the HTTP edge (the
calling key, streaming a stored file) comes through ``doors.edge.Edge``, which the app
puts on ``app.state.edge``.
"""
