from jinja2.runtime import LoopContext, Macro, Markup, Namespace, TemplateNotFound, TemplateReference, TemplateRuntimeError, Undefined, escape, identity, internalcode, markup_join, missing, str_join
name = 'report.md.j2'

def root(context, missing=missing):
    resolve = context.resolve_or_missing
    undefined = environment.undefined
    concat = environment.concat
    cond_expr_undefined = Undefined
    if 0: yield None
    l_0_parts = resolve('parts')
    l_0_summary = resolve('summary')
    l_0_scope = resolve('scope')
    l_0_report_version = resolve('report_version')
    l_0_finding_groups = resolve('finding_groups')
    l_0_posture_chunks = resolve('posture_chunks')
    l_0_keys = resolve('keys')
    l_0_revocations = resolve('revocations')
    l_0_trust_events = resolve('trust_events')
    l_0_timeline_chunks = resolve('timeline_chunks')
    l_0_rejections = resolve('rejections')
    l_0_other_events = resolve('other_events')
    l_0_cited = resolve('cited')
    l_0_p = l_0_s = l_0_sc = l_0_w = missing
    try:
        t_1 = environment.filters['batch']
    except KeyError:
        @internalcode
        def t_1(*unused):
            raise TemplateRuntimeError("No filter named 'batch' found.")
    try:
        t_2 = environment.filters['capitalize']
    except KeyError:
        @internalcode
        def t_2(*unused):
            raise TemplateRuntimeError("No filter named 'capitalize' found.")
    try:
        t_3 = environment.filters['code']
    except KeyError:
        @internalcode
        def t_3(*unused):
            raise TemplateRuntimeError("No filter named 'code' found.")
    try:
        t_4 = environment.filters['dictsort']
    except KeyError:
        @internalcode
        def t_4(*unused):
            raise TemplateRuntimeError("No filter named 'dictsort' found.")
    try:
        t_5 = environment.filters['join']
    except KeyError:
        @internalcode
        def t_5(*unused):
            raise TemplateRuntimeError("No filter named 'join' found.")
    try:
        t_6 = environment.filters['links']
    except KeyError:
        @internalcode
        def t_6(*unused):
            raise TemplateRuntimeError("No filter named 'links' found.")
    try:
        t_7 = environment.filters['rendered']
    except KeyError:
        @internalcode
        def t_7(*unused):
            raise TemplateRuntimeError("No filter named 'rendered' found.")
    try:
        t_8 = environment.filters['seconds']
    except KeyError:
        @internalcode
        def t_8(*unused):
            raise TemplateRuntimeError("No filter named 'seconds' found.")
    try:
        t_9 = environment.filters['value']
    except KeyError:
        @internalcode
        def t_9(*unused):
            raise TemplateRuntimeError("No filter named 'value' found.")
    try:
        t_10 = environment.filters['who']
    except KeyError:
        @internalcode
        def t_10(*unused):
            raise TemplateRuntimeError("No filter named 'who' found.")
    try:
        t_11 = environment.tests['none']
    except KeyError:
        @internalcode
        def t_11(*unused):
            raise TemplateRuntimeError("No test named 'none' found.")
    try:
        t_12 = environment.tests['sameas']
    except KeyError:
        @internalcode
        def t_12(*unused):
            raise TemplateRuntimeError("No test named 'sameas' found.")
    pass
    l_0_p = (undefined(name='parts') if l_0_parts is missing else l_0_parts)
    context.vars['p'] = l_0_p
    context.exported_vars.add('p')
    l_0_s = (undefined(name='summary') if l_0_summary is missing else l_0_summary)
    context.vars['s'] = l_0_s
    context.exported_vars.add('s')
    l_0_sc = (undefined(name='scope') if l_0_scope is missing else l_0_scope)
    context.vars['sc'] = l_0_sc
    context.exported_vars.add('sc')
    l_0_w = environment.getattr((undefined(name='sc') if l_0_sc is missing else l_0_sc), 'window')
    context.vars['w'] = l_0_w
    context.exported_vars.add('w')
    yield '# Compliance report\n\n'
    if t_12(environment.getattr(environment.getattr((undefined(name='sc') if l_0_sc is missing else l_0_sc), 'journal_verification'), 'ok'), False):
        pass
        yield '> **🛑 JOURNAL VERIFICATION FAILED**'
        if (not t_11(environment.getattr(environment.getattr((undefined(name='sc') if l_0_sc is missing else l_0_sc), 'journal_verification'), 'first_bad_position'))):
            pass
            yield ' at position '
            yield str(environment.finalize(environment.getattr(environment.getattr((undefined(name='sc') if l_0_sc is missing else l_0_sc), 'journal_verification'), 'first_bad_position')))
        yield ': '
        yield str(environment.finalize(environment.getattr(environment.getattr((undefined(name='sc') if l_0_sc is missing else l_0_sc), 'journal_verification'), 'message')))
        yield '. The journal has been altered; nothing in this report can be relied on.\n'
    elif t_11(environment.getattr(environment.getattr((undefined(name='sc') if l_0_sc is missing else l_0_sc), 'journal_verification'), 'ok')):
        pass
        yield '> **⚠ The journal was not verified before this report was made: its statements are not established.**\n'
    elif (environment.getattr((undefined(name='s') if l_0_s is missing else l_0_s), 'verdict') == 'clean'):
        pass
        yield '> The journal verifies and this report has no findings.\n'
    else:
        pass
        yield '> The journal verifies; this report has '
        yield str(environment.finalize(((environment.getattr(environment.getattr((undefined(name='s') if l_0_s is missing else l_0_s), 'findings'), 'high') + environment.getattr(environment.getattr((undefined(name='s') if l_0_s is missing else l_0_s), 'findings'), 'medium')) + environment.getattr(environment.getattr((undefined(name='s') if l_0_s is missing else l_0_s), 'findings'), 'low'))))
        yield ' finding(s) a reviewer must look at.\n'
    yield '\nreport\\_version '
    yield str(environment.finalize((undefined(name='report_version') if l_0_report_version is missing else l_0_report_version)))
    yield ' · journal head '
    yield str(environment.finalize(environment.getattr(environment.getattr((undefined(name='sc') if l_0_sc is missing else l_0_sc), 'journal_head'), 'position')))
    yield ' · generated '
    yield str(environment.finalize(environment.getattr((undefined(name='sc') if l_0_sc is missing else l_0_sc), 'generated_at')))
    yield ' by '
    yield str(environment.finalize(environment.getattr((undefined(name='sc') if l_0_sc is missing else l_0_sc), 'generated_by')))
    yield ' · skill\\-ledger '
    yield str(environment.finalize(environment.getattr((undefined(name='sc') if l_0_sc is missing else l_0_sc), 'project_version')))
    yield '\n\n## Summary\n\n| | |\n|---|---|\n| Verdict | '
    yield str(environment.finalize(t_3(environment.getattr((undefined(name='s') if l_0_s is missing else l_0_s), 'verdict'))))
    yield ' |\n| Findings | high '
    yield str(environment.finalize(environment.getattr(environment.getattr((undefined(name='s') if l_0_s is missing else l_0_s), 'findings'), 'high')))
    yield ', medium '
    yield str(environment.finalize(environment.getattr(environment.getattr((undefined(name='s') if l_0_s is missing else l_0_s), 'findings'), 'medium')))
    yield ', low '
    yield str(environment.finalize(environment.getattr(environment.getattr((undefined(name='s') if l_0_s is missing else l_0_s), 'findings'), 'low')))
    yield ' |\n| Versions (skills) | '
    yield str(environment.finalize(environment.getattr((undefined(name='s') if l_0_s is missing else l_0_s), 'versions')))
    yield ' ('
    yield str(environment.finalize(environment.getattr((undefined(name='s') if l_0_s is missing else l_0_s), 'skills')))
    yield '): '
    yield str(environment.finalize(environment.getattr((undefined(name='s') if l_0_s is missing else l_0_s), 'active_versions')))
    yield ' active, '
    yield str(environment.finalize(environment.getattr((undefined(name='s') if l_0_s is missing else l_0_s), 'quarantined_versions')))
    yield ' quarantined, '
    yield str(environment.finalize(environment.getattr((undefined(name='s') if l_0_s is missing else l_0_s), 'disabled_versions')))
    yield ' disabled at the window end |\n| Window | positions '
    yield str(environment.finalize(environment.getattr((undefined(name='w') if l_0_w is missing else l_0_w), 'first_position')))
    yield '..'
    yield str(environment.finalize(environment.getattr((undefined(name='w') if l_0_w is missing else l_0_w), 'last_position')))
    yield ' ('
    yield str(environment.finalize(environment.getattr((undefined(name='w') if l_0_w is missing else l_0_w), 'event_count')))
    yield ' events; since '
    yield str(environment.finalize(environment.getattr((undefined(name='w') if l_0_w is missing else l_0_w), 'since_position')))
    yield ', until '
    yield str(environment.finalize(environment.getattr((undefined(name='w') if l_0_w is missing else l_0_w), 'until_position')))
    yield ')'
    if (environment.getattr((undefined(name='w') if l_0_w is missing else l_0_w), 'since_requested') or environment.getattr((undefined(name='w') if l_0_w is missing else l_0_w), 'until_requested')):
        pass
        yield '; asked for since '
        yield str(environment.finalize(environment.getattr((undefined(name='w') if l_0_w is missing else l_0_w), 'since_requested')))
        yield ', until '
        yield str(environment.finalize(environment.getattr((undefined(name='w') if l_0_w is missing else l_0_w), 'until_requested')))
    yield '; '
    yield str(environment.finalize(environment.getattr((undefined(name='w') if l_0_w is missing else l_0_w), 'first_recorded_at')))
    yield ' to '
    yield str(environment.finalize(environment.getattr((undefined(name='w') if l_0_w is missing else l_0_w), 'last_recorded_at')))
    yield '; window end time '
    yield str(environment.finalize(environment.getattr((undefined(name='w') if l_0_w is missing else l_0_w), 'end_time')))
    yield ' |\n| Timeline entries | '
    yield str(environment.finalize(environment.getattr((undefined(name='s') if l_0_s is missing else l_0_s), 'timeline_entries')))
    yield ' |\n| Journal head | position '
    yield str(environment.finalize(environment.getattr(environment.getattr((undefined(name='sc') if l_0_sc is missing else l_0_sc), 'journal_head'), 'position')))
    yield ', hash '
    yield str(environment.finalize(t_3(environment.getattr(environment.getattr((undefined(name='sc') if l_0_sc is missing else l_0_sc), 'journal_head'), 'hash'))))
    yield ' |\n| Journal verification | '
    if t_12(environment.getattr(environment.getattr((undefined(name='sc') if l_0_sc is missing else l_0_sc), 'journal_verification'), 'ok'), True):
        pass
        yield 'ok'
    elif t_12(environment.getattr(environment.getattr((undefined(name='sc') if l_0_sc is missing else l_0_sc), 'journal_verification'), 'ok'), False):
        pass
        yield '**FAILED** (first bad position '
        yield str(environment.finalize(environment.getattr(environment.getattr((undefined(name='sc') if l_0_sc is missing else l_0_sc), 'journal_verification'), 'first_bad_position')))
        yield ')'
    else:
        pass
        yield 'not run'
    if environment.getattr(environment.getattr((undefined(name='sc') if l_0_sc is missing else l_0_sc), 'journal_verification'), 'message'):
        pass
        yield ': '
        yield str(environment.finalize(environment.getattr(environment.getattr((undefined(name='sc') if l_0_sc is missing else l_0_sc), 'journal_verification'), 'message')))
    yield ' |\n| Checkpoint | '
    yield str(environment.finalize(environment.getattr(environment.getattr((undefined(name='sc') if l_0_sc is missing else l_0_sc), 'checkpoint'), 'statement')))
    if environment.getattr(environment.getattr((undefined(name='sc') if l_0_sc is missing else l_0_sc), 'checkpoint'), 'covering'):
        pass
        yield ' ('
        yield str(environment.finalize(t_6([environment.getattr(environment.getattr((undefined(name='sc') if l_0_sc is missing else l_0_sc), 'checkpoint'), 'covering')])))
        yield ')'
    yield ' |\n| Filters | skills: '
    yield str(environment.finalize((t_5(context.eval_ctx, environment.getattr(environment.getattr((undefined(name='sc') if l_0_sc is missing else l_0_sc), 'filters'), 'skills'), ', ') or 'all')))
    yield '; publishers: '
    yield str(environment.finalize((t_5(context.eval_ctx, environment.getattr(environment.getattr((undefined(name='sc') if l_0_sc is missing else l_0_sc), 'filters'), 'publishers'), ', ') or 'all')))
    yield '; max audit age: '
    yield str(environment.finalize((t_8(environment.getattr(environment.getattr((undefined(name='sc') if l_0_sc is missing else l_0_sc), 'filters'), 'max_audit_age_seconds')) if (not t_11(environment.getattr(environment.getattr((undefined(name='sc') if l_0_sc is missing else l_0_sc), 'filters'), 'max_audit_age_seconds'))) else 'not checked')))
    yield ' |\n| Policy versions in force | '
    l_1_loop = missing
    for l_1_pv, l_1_loop in LoopContext(environment.getattr((undefined(name='sc') if l_0_sc is missing else l_0_sc), 'policy_versions'), undefined):
        _loop_vars = {}
        pass
        yield 'v'
        yield str(environment.finalize(environment.getattr(l_1_pv, 'version')))
        if (not t_11(environment.getattr(l_1_pv, 'position'))):
            pass
            yield ' ('
            yield str(environment.finalize(t_6([l_1_pv])))
            yield ')'
        if (not environment.getattr(l_1_loop, 'last')):
            pass
            yield ', '
    l_1_loop = l_1_pv = missing
    yield ' |\n\n## Findings\n\n'
    t_13 = 1
    for (l_1_sev, l_1_count, l_1_items) in (undefined(name='finding_groups') if l_0_finding_groups is missing else l_0_finding_groups):
        l_1_findings = resolve('findings')
        _loop_vars = {}
        pass
        yield '### '
        yield str(environment.finalize(t_2(l_1_sev)))
        yield ' ('
        yield str(environment.finalize(l_1_count))
        yield ')\n\n'
        for l_2_piece in context.call((undefined(name='findings') if l_1_findings is missing else l_1_findings), l_1_items, _loop_vars=_loop_vars):
            _loop_vars = {}
            pass
            yield str(environment.finalize(l_2_piece))
        l_2_piece = missing
        yield '\n'
        t_13 = 0
    l_1_sev = l_1_count = l_1_items = l_1_findings = missing
    if t_13:
        pass
        yield 'No findings.\n\n'
    yield '## Posture at the window end\n\n'
    l_1_loop = missing
    t_14 = 1
    for l_1_chunk, l_1_loop in LoopContext((undefined(name='posture_chunks') if l_0_posture_chunks is missing else l_0_posture_chunks), undefined):
        _loop_vars = {}
        pass
        if environment.getattr(l_1_loop, 'first'):
            pass
            yield '| Skill | Version | Publisher | Name / description | Status | Current | Eligible | Trust | Key | Last audit | Status reason | Evidence |\n|---|---|---|---|---|---|---|---|---|---|---|---|\n'
        yield str(environment.finalize(l_1_chunk))
        t_14 = 0
    l_1_loop = l_1_chunk = missing
    if t_14:
        pass
        yield 'No version installed up to the window end.\n'
    yield '\n## Trust\n\n### Keys at the window end\n\n'
    l_1_loop = missing
    t_15 = 1
    for l_1_k, l_1_loop in LoopContext((undefined(name='keys') if l_0_keys is missing else l_0_keys), undefined):
        _loop_vars = {}
        pass
        if environment.getattr(l_1_loop, 'first'):
            pass
            yield '| Publisher | Key id | Kind | State | Allowlisted | Pinned on first use | Revoked |\n|---|---|---|---|---|---|---|\n'
        yield '| '
        yield str(environment.finalize(environment.getattr(l_1_k, 'publisher')))
        yield ' | '
        yield str(environment.finalize(t_3(environment.getattr(l_1_k, 'key_id'))))
        yield ' | '
        yield str(environment.finalize(environment.getattr(l_1_k, 'kind')))
        yield ' | '
        yield str(environment.finalize(environment.getattr(l_1_k, 'state')))
        yield ' |'
        for l_2_act in (environment.getattr(l_1_k, 'allowlisted'), environment.getattr(l_1_k, 'pinned'), environment.getattr(l_1_k, 'revoked')):
            _loop_vars = {}
            pass
            yield ' '
            if l_2_act:
                pass
                yield str(environment.finalize(environment.getattr(l_2_act, 'recorded_at')))
                yield ' by '
                yield str(environment.finalize(t_10(environment.getattr(l_2_act, 'actor'))))
                if environment.getattr(l_2_act, 'reason'):
                    pass
                    yield ': '
                    yield str(environment.finalize(environment.getattr(l_2_act, 'reason')))
                if environment.getattr(l_2_act, 'first_skill_id'):
                    pass
                    yield ' (first '
                    yield str(environment.finalize(environment.getattr(l_2_act, 'first_skill_id')))
                    yield ' '
                    yield str(environment.finalize(environment.getattr(l_2_act, 'first_version')))
                    yield ')'
                yield ' ('
                yield str(environment.finalize(t_6([l_2_act])))
                yield ')'
            else:
                pass
                yield '-'
            yield ' |'
        l_2_act = missing
        yield '\n'
        t_15 = 0
    l_1_loop = l_1_k = missing
    if t_15:
        pass
        yield 'No publisher key recorded.\n'
    yield '\n### Revocations in the window\n\n'
    t_16 = 1
    for l_1_rv in (undefined(name='revocations') if l_0_revocations is missing else l_0_revocations):
        _loop_vars = {}
        pass
        yield '- Key '
        yield str(environment.finalize(t_3(environment.getattr(l_1_rv, 'key_id'))))
        yield ' of '
        yield str(environment.finalize(environment.getattr(l_1_rv, 'publisher')))
        yield ' revoked at '
        yield str(environment.finalize(environment.getattr(l_1_rv, 'recorded_at')))
        yield ' by '
        yield str(environment.finalize(t_10(environment.getattr(l_1_rv, 'actor'))))
        yield ': '
        yield str(environment.finalize(environment.getattr(l_1_rv, 'reason')))
        yield ' ('
        yield str(environment.finalize(t_6([l_1_rv])))
        yield ')\n'
        t_17 = 1
        for l_2_q in environment.getattr(l_1_rv, 'quarantined'):
            _loop_vars = {}
            pass
            yield '  - quarantined '
            yield str(environment.finalize(environment.getattr(l_2_q, 'skill_id')))
            yield ' '
            yield str(environment.finalize(environment.getattr(l_2_q, 'version')))
            yield ' at '
            yield str(environment.finalize(environment.getattr(l_2_q, 'recorded_at')))
            yield ', '
            yield str(environment.finalize(t_8(environment.getattr(l_2_q, 'delay_seconds'))))
            yield ' after the revocation ('
            yield str(environment.finalize(t_6([l_2_q])))
            yield ')\n'
            t_17 = 0
        l_2_q = missing
        if t_17:
            pass
            yield '  - no version quarantined for this revocation by the window end\n'
        for l_2_u in environment.getattr(l_1_rv, 'not_quarantined'):
            _loop_vars = {}
            pass
            yield '  - **not quarantined at the window end:** '
            yield str(environment.finalize(environment.getattr(l_2_u, 'skill_id')))
            yield ' '
            yield str(environment.finalize(environment.getattr(l_2_u, 'version')))
            yield ' ('
            yield str(environment.finalize(environment.getattr(l_2_u, 'status')))
            yield ')\n'
        l_2_u = missing
        t_16 = 0
    l_1_rv = missing
    if t_16:
        pass
        yield 'None.\n'
    yield '\n### Trust events in the window\n\n'
    l_1_loop = missing
    t_18 = 1
    for l_1_chunk, l_1_loop in LoopContext(t_1((undefined(name='trust_events') if l_0_trust_events is missing else l_0_trust_events), 256), undefined):
        l_1_entry_rows = resolve('entry_rows')
        _loop_vars = {}
        pass
        if environment.getattr(l_1_loop, 'first'):
            pass
            yield str(environment.finalize(t_7(context.call(environment.getattr((undefined(name='p') if l_0_p is missing else l_0_p), 'entry_head'), True, _loop_vars=_loop_vars))))
        yield str(environment.finalize(t_7(context.call((undefined(name='entry_rows') if l_1_entry_rows is missing else l_1_entry_rows), l_1_chunk, True, _loop_vars=_loop_vars))))
        t_18 = 0
    l_1_loop = l_1_chunk = l_1_entry_rows = missing
    if t_18:
        pass
        yield 'None.\n'
    yield '\n## Audit policy\n\n| Version | Since | By | Reason | Values |\n|---|---|---|---|---|\n'
    l_1_loop = missing
    for l_1_pv, l_1_loop in LoopContext(environment.getattr((undefined(name='sc') if l_0_sc is missing else l_0_sc), 'policy_versions'), undefined):
        _loop_vars = {}
        pass
        yield '| v'
        yield str(environment.finalize(environment.getattr(l_1_pv, 'version')))
        if (not t_11(environment.getattr(l_1_pv, 'position'))):
            pass
            yield ' ('
            yield str(environment.finalize(t_6([l_1_pv])))
            yield ')'
        yield ' | '
        yield str(environment.finalize((environment.getattr(l_1_pv, 'recorded_at') or 'defaults')))
        yield ' | '
        yield str(environment.finalize(t_10(environment.getattr(l_1_pv, 'actor'))))
        yield ' | '
        yield str(environment.finalize(environment.getattr(l_1_pv, 'reason')))
        yield ' | '
        l_2_loop = missing
        for (l_2_key, l_2_value), l_2_loop in LoopContext(t_4(environment.getattr(l_1_pv, 'values')), undefined):
            _loop_vars = {}
            pass
            yield str(environment.finalize(t_3(l_2_key)))
            yield ' = '
            yield str(environment.finalize(t_9(l_2_value)))
            if (l_2_key in environment.getattr(l_1_pv, 'changed')):
                pass
                yield ' (changed)'
            if (not environment.getattr(l_2_loop, 'last')):
                pass
                yield '; '
        l_2_loop = l_2_key = l_2_value = missing
        yield ' |\n'
    l_1_loop = l_1_pv = missing
    yield '\n## What happened in the window, per skill\n\n'
    t_19 = 1
    for l_1_chunk in (undefined(name='timeline_chunks') if l_0_timeline_chunks is missing else l_0_timeline_chunks):
        _loop_vars = {}
        pass
        yield str(environment.finalize(l_1_chunk))
        t_19 = 0
    l_1_chunk = missing
    if t_19:
        pass
        yield 'No skill event in the window.\n\n'
    yield '## Rejected artifacts in the window\n\n'
    l_1_loop = missing
    t_20 = 1
    for l_1_chunk, l_1_loop in LoopContext(t_1((undefined(name='rejections') if l_0_rejections is missing else l_0_rejections), 256), undefined):
        l_1_rejection_rows = resolve('rejection_rows')
        _loop_vars = {}
        pass
        if environment.getattr(l_1_loop, 'first'):
            pass
            yield '| #, hash | Time | Actor | Artifact | Error | Skill | Message |\n|---|---|---|---|---|---|---|\n'
        yield str(environment.finalize(t_7(context.call((undefined(name='rejection_rows') if l_1_rejection_rows is missing else l_1_rejection_rows), l_1_chunk, _loop_vars=_loop_vars))))
        t_20 = 0
    l_1_loop = l_1_chunk = l_1_rejection_rows = missing
    if t_20:
        pass
        yield 'None.\n'
    yield '\n## Policy, checkpoint and other events in the window\n\n'
    l_1_loop = missing
    t_21 = 1
    for l_1_chunk, l_1_loop in LoopContext(t_1((undefined(name='other_events') if l_0_other_events is missing else l_0_other_events), 256), undefined):
        l_1_entry_rows = resolve('entry_rows')
        _loop_vars = {}
        pass
        if environment.getattr(l_1_loop, 'first'):
            pass
            yield str(environment.finalize(t_7(context.call(environment.getattr((undefined(name='p') if l_0_p is missing else l_0_p), 'entry_head'), True, _loop_vars=_loop_vars))))
        yield str(environment.finalize(t_7(context.call((undefined(name='entry_rows') if l_1_entry_rows is missing else l_1_entry_rows), l_1_chunk, True, _loop_vars=_loop_vars))))
        t_21 = 0
    l_1_loop = l_1_chunk = l_1_entry_rows = missing
    if t_21:
        pass
        yield 'None.\n'
    yield '\n## Appendix: cited events\n\nThe events claims cite that are not shown above as entries of the window (those are their own citation: their rows carry their position and hash). Check any event with `skills journal --json --since POSITION-1 --until POSITION`: the event printed there must have this hash.\n\n'
    l_1_loop = missing
    t_22 = 1
    for l_1_chunk, l_1_loop in LoopContext(t_1((undefined(name='cited') if l_0_cited is missing else l_0_cited), 256), undefined):
        l_1_cited_rows = resolve('cited_rows')
        _loop_vars = {}
        pass
        if environment.getattr(l_1_loop, 'first'):
            pass
            yield '| Position | Hash | Kind | Recorded at | Stream | Actor |\n|---|---|---|---|---|---|\n'
        yield str(environment.finalize(t_7(context.call((undefined(name='cited_rows') if l_1_cited_rows is missing else l_1_cited_rows), l_1_chunk, _loop_vars=_loop_vars))))
        t_22 = 0
    l_1_loop = l_1_chunk = l_1_cited_rows = missing
    if t_22:
        pass
        yield 'None: every cited event is shown as an entry above.\n'

blocks = {}
debug_info = '3=97&4=100&5=103&6=106&9=110&10=113&11=120&13=123&16=129&19=132&25=142&26=144&27=150&28=160&29=183&30=185&31=189&32=205&33=212&34=219&38=235&39=240&41=244&49=258&50=261&54=264&63=273&64=276&68=280&76=324&77=328&78=341&79=345&83=360&84=364&92=379&93=383&94=386&103=394&104=398&109=429&110=432&117=441&118=445&122=448&129=457&130=461&131=464&140=473&141=477&145=480'