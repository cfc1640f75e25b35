"""Composition roots: where each process builds its parts, once, and closes them.

    run.py        `ai-sysadmin run`: the store, one client per role, one knowledge base,
                  the action service, the investigator, L4 hooks, incidents + review, L1,
                  the collector and the switch watch (ServiceParts)
    api.py        `ai-sysadmin api`: the application's parts as aiohttp cleanup contexts,
                  and `serve`
    executor.py   `ai-sysadmin executor`
    session.py    `ask` and `chat`: the parts one investigation needs
    admin.py      `actions`, `pause`/`resume`, `incidents`: one single-connection pool
    investigator.py  the one factory of the L4 investigator (run, api, ask/chat, eval call it)
    knowledge.py  the process's one knowledge base, opened on first use
    clients.py    one LLM client per role
    signals.py    SIGTERM/SIGINT as an event

The layers build nothing of each other: they take their parts as arguments.
"""
