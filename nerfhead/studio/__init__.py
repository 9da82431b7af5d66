"""nerfhead studio: the web page over the library (``nerfhead studio``)."""
