"""The pack's Airflow plugin when this plugins folder is where Airflow finds it (``make run``,
the docker-compose mount): :class:`auxeng.airflow_plugin.AuxEngPlugin`, unless the installed
auxeng-followups distribution registers it through its entry point (then this is None and
the plugin manager finds no plugin here)."""

from auxeng.airflow_plugin import plugin_for_the_plugins_folder

AuxEngPlugin = plugin_for_the_plugins_folder()
