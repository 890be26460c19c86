"""Pure cold-chain rules: ``(state, reading) -> (state, alerts)``, no I/O, the clock passed in.

The app's entry point is ``gateway.rules.site.SiteRules``.  One job per module:

* ``timebase``  how time is measured (wall time for evidence, monotonic for durations)
* ``params``    rule parameters as frozen data, built from the config by ``params_from_config``
* ``limits``    high/low limits, pre-alarms, alarm delay, hysteresis
* ``budget``    cumulative time outside the limits in a sliding window
* ``rate``      rate of change
* ``faults``    sensor faults: out of physical range, stuck value
* ``mkt``       mean kinetic temperature (USP <1079.2>), batch and rolling
* ``recording`` the minimum recording policy (China GSP) and its violations
* ``evidence``  running numbers behind an alert; ``alerts`` turns findings into contract Alerts
* ``engine``    all rules of one sensor's quantity as one pure step; ``site`` all sensors
* ``offline_sources``  open gaps of sensors, readers and scanners -> one alert per outage

The dock's rules share the ``dock_`` prefix, in the order an item meets them
(kept flat so the purity test's glob still covers them; ``gateway.dock`` runs them):

* ``dock_portal``        tag reads at a door -> one decision per tag and pass, with direction
* ``dock_knowledge``     the index over the pushed master data and recall list
* ``dock_checks``        one movement or scan -> door alert steps (recalls, expiry, TOR)
* ``dock_alert_groups``  item alerts of one lot at one door -> one alert per pallet
"""
