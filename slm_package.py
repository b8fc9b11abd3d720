"""Entry point of the ``slm`` component package (``PulumiPlugin.yaml`` ``main``).

The Python language host runs this file with the engine's address; it serves the provider on a free
127.0.0.1 port and prints the port (``components.package.serve``). It lives at the repository root so
``components`` imports as an ordinary top-level package, with no ``sys.path`` edits.
"""

from components.package import serve

if __name__ == "__main__":
    serve()
