def load(engine, pop, replace=True):
    raise NotImplementedError
