from jinja2.runtime import LoopContext, Macro, Markup, Namespace, TemplateNotFound, TemplateReference, TemplateRuntimeError, Undefined, escape, identity, internalcode, markup_join, missing, str_join
name = 'parts.md.j2'

def root(context, missing=missing):
    resolve = context.resolve_or_missing
    undefined = environment.undefined
    concat = environment.concat
    cond_expr_undefined = Undefined
    if 0: yield None
    l_0_entry_head = l_0_timeline_open = l_0_timeline_close = missing
    try:
        t_1 = environment.filters['rendered']
    except KeyError:
        @internalcode
        def t_1(*unused):
            raise TemplateRuntimeError("No filter named 'rendered' found.")
    pass
    def macro(l_1_stream):
        t_2 = []
        if l_1_stream is missing:
            l_1_stream = undefined("parameter 'stream' was not provided", name='stream')
        pass
        t_2.append(
            '| #, hash | Time | Actor |',
        )
        if l_1_stream:
            pass
            t_2.append(
                ' Stream |',
            )
        t_2.append(
            ' Event | Version | Reason code | Reason |\n|---|---|---|',
        )
        if l_1_stream:
            pass
            t_2.append(
                '---|',
            )
        t_2.append(
            '---|---|---|---|\n',
        )
        return concat(t_2)
    context.exported_vars.add('entry_head')
    context.vars['entry_head'] = l_0_entry_head = Macro(environment, macro, 'entry_head', ('stream',), False, False, False, context.eval_ctx.autoescape)
    def macro(l_1_skill_id):
        t_3 = []
        if l_1_skill_id is missing:
            l_1_skill_id = undefined("parameter 'skill_id' was not provided", name='skill_id')
        pass
        t_3.extend((
            '### ',
            str(environment.finalize(l_1_skill_id)),
            '\n\n',
            str(environment.finalize(t_1(context.call((undefined(name='entry_head') if l_0_entry_head is missing else l_0_entry_head), False)))),
        ))
        return concat(t_3)
    context.exported_vars.add('timeline_open')
    context.vars['timeline_open'] = l_0_timeline_open = Macro(environment, macro, 'timeline_open', ('skill_id',), False, False, False, context.eval_ctx.autoescape)
    def macro():
        t_4 = []
        pass
        t_4.append(
            '\n',
        )
        return concat(t_4)
    context.exported_vars.add('timeline_close')
    context.vars['timeline_close'] = l_0_timeline_close = Macro(environment, macro, 'timeline_close', (), False, False, False, context.eval_ctx.autoescape)

blocks = {}
debug_info = '6=18&7=26&8=34&10=45&11=52&13=54&14=59'