from jinja2.runtime import LoopContext, Macro, Markup, Namespace, TemplateNotFound, TemplateReference, TemplateRuntimeError, Undefined, escape, identity, internalcode, markup_join, missing, str_join
name = 'parts.html.j2'

def root(context, missing=missing):
    resolve = context.resolve_or_missing
    undefined = environment.undefined
    concat = environment.concat
    cond_expr_undefined = Undefined
    if 0: yield None
    l_0_actor = l_0_entry_head = l_0_timeline_open = l_0_timeline_close = missing
    try:
        t_1 = environment.filters['who']
    except KeyError:
        @internalcode
        def t_1(*unused):
            raise TemplateRuntimeError("No filter named 'who' found.")
    pass
    def macro(l_1_a):
        t_2 = []
        if l_1_a is missing:
            l_1_a = undefined("parameter 'a' was not provided", name='a')
        pass
        if l_1_a:
            pass
            t_2.extend((
                '<span title="',
                escape(environment.finalize(environment.getattr(l_1_a, 'command'))),
                ' on ',
                escape(environment.finalize(environment.getattr(l_1_a, 'host'))),
                '">',
                escape(environment.finalize(t_1(l_1_a))),
                '</span>',
            ))
        else:
            pass
            t_2.append(
                '-',
            )
        return concat(t_2)
    context.exported_vars.add('actor')
    context.vars['actor'] = l_0_actor = Macro(environment, macro, 'actor', ('a',), False, False, False, context.eval_ctx.autoescape)
    def macro(l_1_stream):
        t_3 = []
        if l_1_stream is missing:
            l_1_stream = undefined("parameter 'stream' was not provided", name='stream')
        pass
        t_3.append(
            '<tr><th>#, hash</th><th>Time</th><th>Actor</th>',
        )
        if l_1_stream:
            pass
            t_3.append(
                '<th>Stream</th>',
            )
        t_3.append(
            '<th>Event</th><th>Version</th><th>Reason code</th><th>Reason</th></tr>\n',
        )
        return concat(t_3)
    context.exported_vars.add('entry_head')
    context.vars['entry_head'] = l_0_entry_head = Macro(environment, macro, 'entry_head', ('stream',), False, False, False, context.eval_ctx.autoescape)
    def macro(l_1_skill_id):
        t_4 = []
        if l_1_skill_id is missing:
            l_1_skill_id = undefined("parameter 'skill_id' was not provided", name='skill_id')
        pass
        t_4.extend((
            '<h3>',
            escape(environment.finalize(l_1_skill_id)),
            '</h3>\n<table>',
            escape(environment.finalize(context.call((undefined(name='entry_head') if l_0_entry_head is missing else l_0_entry_head), False))),
        ))
        return concat(t_4)
    context.exported_vars.add('timeline_open')
    context.vars['timeline_open'] = l_0_timeline_open = Macro(environment, macro, 'timeline_open', ('skill_id',), False, False, False, context.eval_ctx.autoescape)
    def macro():
        t_5 = []
        pass
        t_5.append(
            '</table>\n',
        )
        return concat(t_5)
    context.exported_vars.add('timeline_close')
    context.vars['timeline_close'] = l_0_timeline_close = Macro(environment, macro, 'timeline_close', (), False, False, False, context.eval_ctx.autoescape)
    yield '\n'

blocks = {}
debug_info = '6=18&10=42&12=61&13=70&14=75'