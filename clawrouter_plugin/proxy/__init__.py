"""The aiohttp proxy: routes that translate HTTP to pipeline calls."""
