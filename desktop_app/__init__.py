"""ShopMatch desktop app (PySide6). All engine work runs on one background thread."""
