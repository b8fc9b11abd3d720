"""Pure rule functions and facts shared by the components and the CrossGuard pack.

Nothing in this package imports ``pulumi`` or ``pulumi_policy``: the components call these
functions to refuse bad input before declaring anything, and the pack calls the same functions on
the wire properties the engine sends.
"""
