# Logging for the board: micropython-lib's `logging` when it is installed (the flash tool installs
# it), else a few lines that print, so a board flashed without its packages still says what it does.


class _PrintLogger:
    def __init__(self, name):
        self.name = name

    def _log(self, level, message, args):
        print(level, self.name, (message % args) if args else message)

    def debug(self, message, *args):
        pass

    def info(self, message, *args):
        self._log("INFO", message, args)

    def warning(self, message, *args):
        self._log("WARNING", message, args)

    def error(self, message, *args):
        self._log("ERROR", message, args)


def get_logger(name):
    try:
        import logging
    except ImportError:
        return _PrintLogger(name)
    logging.basicConfig(level=logging.INFO)
    return logging.getLogger(name)
