"""Storage: the only package that imports SQLAlchemy. Repositories are modules per aggregate."""
