"""The Lark (Feishu) adapter: events in (``listeners``), messages out (``sender``)."""
