"""The FTP gateway: an HTTP API (list, download, upload, delete, mkdir, rename) over FTP and FTPS backends."""
from __future__ import annotations

from protocols.ftp.config import FtpSettings, ftp_settings
from protocols.ftp.gateway import FtpGateway, FtpOptions
from protocols.ftp.request import FtpOutcome

__all__ = ["FtpGateway", "FtpOptions", "FtpOutcome", "FtpSettings", "ftp_settings"]
