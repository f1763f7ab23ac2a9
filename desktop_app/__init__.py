"""ShopMatch desktop app (PySide6). All engine work runs in background tasks."""
