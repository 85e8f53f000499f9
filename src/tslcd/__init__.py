"""tslcd: operations platform for the Party and State special-purpose data network."""

__version__ = "0.1.0"
