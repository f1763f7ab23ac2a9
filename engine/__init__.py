"""ShopMatch engine: catalog, encoder, index, matching, decisions and export. Never imports Qt."""

__version__ = "0.1.0"
