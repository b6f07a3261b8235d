"""The operator's room: the `rehab` command and the supervisor behind `rehab up`.

It starts the services and the gateway as processes and never imports their insides.
"""
