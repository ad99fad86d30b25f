from jinja2.runtime import LoopContext, Macro, Markup, Namespace, TemplateNotFound, TemplateReference, TemplateRuntimeError, Undefined, escape, identity, internalcode, markup_join, missing, str_join
name = 'report.html.j2'

def root(context, missing=missing):
    resolve = context.resolve_or_missing
    undefined = environment.undefined
    concat = environment.concat
    cond_expr_undefined = Undefined
    if 0: yield None
    l_0_parts = resolve('parts')
    l_0_summary = resolve('summary')
    l_0_scope = resolve('scope')
    l_0_style_hash = resolve('style_hash')
    l_0_css = resolve('css')
    l_0_report_version = resolve('report_version')
    l_0_ev = resolve('ev')
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
        t_3 = environment.filters['dictsort']
    except KeyError:
        @internalcode
        def t_3(*unused):
            raise TemplateRuntimeError("No filter named 'dictsort' found.")
    try:
        t_4 = environment.filters['join']
    except KeyError:
        @internalcode
        def t_4(*unused):
            raise TemplateRuntimeError("No filter named 'join' found.")
    try:
        t_5 = environment.filters['seconds']
    except KeyError:
        @internalcode
        def t_5(*unused):
            raise TemplateRuntimeError("No filter named 'seconds' found.")
    try:
        t_6 = environment.filters['value']
    except KeyError:
        @internalcode
        def t_6(*unused):
            raise TemplateRuntimeError("No filter named 'value' found.")
    try:
        t_7 = environment.tests['none']
    except KeyError:
        @internalcode
        def t_7(*unused):
            raise TemplateRuntimeError("No test named 'none' found.")
    try:
        t_8 = environment.tests['sameas']
    except KeyError:
        @internalcode
        def t_8(*unused):
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
    yield '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; style-src \''
    yield escape(environment.finalize((undefined(name='style_hash') if l_0_style_hash is missing else l_0_style_hash)))
    yield '\'; img-src \'none\'; font-src \'none\'; script-src \'none\'; base-uri \'none\'; form-action \'none\'">\n<meta name="viewport" content="width=device-width, initial-scale=1">\n<title>Compliance report: positions '
    yield escape(environment.finalize((environment.getattr((undefined(name='w') if l_0_w is missing else l_0_w), 'since_position') if (not t_7(environment.getattr((undefined(name='w') if l_0_w is missing else l_0_w), 'since_position'))) else 0)))
    yield '..'
    yield escape(environment.finalize(environment.getattr((undefined(name='w') if l_0_w is missing else l_0_w), 'until_position')))
    yield '</title>\n<style>'
    yield escape(environment.finalize((undefined(name='css') if l_0_css is missing else l_0_css)))
    yield '</style>\n</head>\n<body>\n<header id="top">\n<h1>Compliance report</h1>\n'
    if t_8(environment.getattr(environment.getattr((undefined(name='sc') if l_0_sc is missing else l_0_sc), 'journal_verification'), 'ok'), False):
        pass
        yield '<div class="banner fail" id="verification-failed" role="alert">JOURNAL VERIFICATION FAILED'
        if (not t_7(environment.getattr(environment.getattr((undefined(name='sc') if l_0_sc is missing else l_0_sc), 'journal_verification'), 'first_bad_position'))):
            pass
            yield ' at position '
            yield escape(environment.finalize(environment.getattr(environment.getattr((undefined(name='sc') if l_0_sc is missing else l_0_sc), 'journal_verification'), 'first_bad_position')))
        yield ': '
        yield escape(environment.finalize(environment.getattr(environment.getattr((undefined(name='sc') if l_0_sc is missing else l_0_sc), 'journal_verification'), 'message')))
        yield '. The journal has been altered; nothing in this report can be relied on.</div>\n'
    elif t_7(environment.getattr(environment.getattr((undefined(name='sc') if l_0_sc is missing else l_0_sc), 'journal_verification'), 'ok')):
        pass
        yield '<div class="banner warn" id="verification-not-run" role="alert">The journal was not verified before this report was made: its statements are not established.</div>\n'
    elif (environment.getattr((undefined(name='s') if l_0_s is missing else l_0_s), 'verdict') == 'clean'):
        pass
        yield '<div class="banner clean">The journal verifies and this report has no findings.</div>\n'
    else:
        pass
        yield '<div class="banner warn">The journal verifies; this report has '
        yield escape(environment.finalize(((environment.getattr(environment.getattr((undefined(name='s') if l_0_s is missing else l_0_s), 'findings'), 'high') + environment.getattr(environment.getattr((undefined(name='s') if l_0_s is missing else l_0_s), 'findings'), 'medium')) + environment.getattr(environment.getattr((undefined(name='s') if l_0_s is missing else l_0_s), 'findings'), 'low'))))
        yield ' finding(s) a reviewer must look at.</div>\n'
    yield '<p class="meta">report_version '
    yield escape(environment.finalize((undefined(name='report_version') if l_0_report_version is missing else l_0_report_version)))
    yield ' &middot; journal head '
    yield escape(environment.finalize(environment.getattr(environment.getattr((undefined(name='sc') if l_0_sc is missing else l_0_sc), 'journal_head'), 'position')))
    yield ' &middot; generated '
    yield escape(environment.finalize(environment.getattr((undefined(name='sc') if l_0_sc is missing else l_0_sc), 'generated_at')))
    yield ' by '
    yield escape(environment.finalize(environment.getattr((undefined(name='sc') if l_0_sc is missing else l_0_sc), 'generated_by')))
    yield ' &middot; skill-ledger '
    yield escape(environment.finalize(environment.getattr((undefined(name='sc') if l_0_sc is missing else l_0_sc), 'project_version')))
    yield '</p>\n</header>\n\n<section id="summary">\n<h2>Summary</h2>\n<table>\n<tr><th>Verdict</th><td>'
    yield escape(environment.finalize(environment.getattr((undefined(name='s') if l_0_s is missing else l_0_s), 'verdict')))
    yield '</td></tr>\n<tr><th>Findings</th><td><span class="sev high">high</span> '
    yield escape(environment.finalize(environment.getattr(environment.getattr((undefined(name='s') if l_0_s is missing else l_0_s), 'findings'), 'high')))
    yield ' &nbsp; <span class="sev medium">medium</span> '
    yield escape(environment.finalize(environment.getattr(environment.getattr((undefined(name='s') if l_0_s is missing else l_0_s), 'findings'), 'medium')))
    yield ' &nbsp; <span class="sev low">low</span> '
    yield escape(environment.finalize(environment.getattr(environment.getattr((undefined(name='s') if l_0_s is missing else l_0_s), 'findings'), 'low')))
    yield '</td></tr>\n<tr><th>Versions (skills)</th><td>'
    yield escape(environment.finalize(environment.getattr((undefined(name='s') if l_0_s is missing else l_0_s), 'versions')))
    yield ' ('
    yield escape(environment.finalize(environment.getattr((undefined(name='s') if l_0_s is missing else l_0_s), 'skills')))
    yield '): '
    yield escape(environment.finalize(environment.getattr((undefined(name='s') if l_0_s is missing else l_0_s), 'active_versions')))
    yield ' active, '
    yield escape(environment.finalize(environment.getattr((undefined(name='s') if l_0_s is missing else l_0_s), 'quarantined_versions')))
    yield ' quarantined, '
    yield escape(environment.finalize(environment.getattr((undefined(name='s') if l_0_s is missing else l_0_s), 'disabled_versions')))
    yield ' disabled at the window end</td></tr>\n<tr><th>Window</th><td>positions '
    yield escape(environment.finalize(environment.getattr((undefined(name='w') if l_0_w is missing else l_0_w), 'first_position')))
    yield '..'
    yield escape(environment.finalize(environment.getattr((undefined(name='w') if l_0_w is missing else l_0_w), 'last_position')))
    yield ' ('
    yield escape(environment.finalize(environment.getattr((undefined(name='w') if l_0_w is missing else l_0_w), 'event_count')))
    yield ' events; since '
    yield escape(environment.finalize(environment.getattr((undefined(name='w') if l_0_w is missing else l_0_w), 'since_position')))
    yield ', until '
    yield escape(environment.finalize(environment.getattr((undefined(name='w') if l_0_w is missing else l_0_w), 'until_position')))
    yield ')'
    if (environment.getattr((undefined(name='w') if l_0_w is missing else l_0_w), 'since_requested') or environment.getattr((undefined(name='w') if l_0_w is missing else l_0_w), 'until_requested')):
        pass
        yield '; asked for since '
        yield escape(environment.finalize(environment.getattr((undefined(name='w') if l_0_w is missing else l_0_w), 'since_requested')))
        yield ', until '
        yield escape(environment.finalize(environment.getattr((undefined(name='w') if l_0_w is missing else l_0_w), 'until_requested')))
    yield '<br>'
    yield escape(environment.finalize(environment.getattr((undefined(name='w') if l_0_w is missing else l_0_w), 'first_recorded_at')))
    yield ' to '
    yield escape(environment.finalize(environment.getattr((undefined(name='w') if l_0_w is missing else l_0_w), 'last_recorded_at')))
    yield '; window end time '
    yield escape(environment.finalize(environment.getattr((undefined(name='w') if l_0_w is missing else l_0_w), 'end_time')))
    yield '</td></tr>\n<tr><th>Timeline entries</th><td>'
    yield escape(environment.finalize(environment.getattr((undefined(name='s') if l_0_s is missing else l_0_s), 'timeline_entries')))
    yield '</td></tr>\n<tr><th>Journal head</th><td>position '
    yield escape(environment.finalize(environment.getattr(environment.getattr((undefined(name='sc') if l_0_sc is missing else l_0_sc), 'journal_head'), 'position')))
    yield ', hash <code>'
    yield escape(environment.finalize(environment.getattr(environment.getattr((undefined(name='sc') if l_0_sc is missing else l_0_sc), 'journal_head'), 'hash')))
    yield '</code></td></tr>\n<tr><th>Journal verification</th><td>'
    if t_8(environment.getattr(environment.getattr((undefined(name='sc') if l_0_sc is missing else l_0_sc), 'journal_verification'), 'ok'), True):
        pass
        yield 'ok'
    elif t_8(environment.getattr(environment.getattr((undefined(name='sc') if l_0_sc is missing else l_0_sc), 'journal_verification'), 'ok'), False):
        pass
        yield '<strong>FAILED</strong> (first bad position '
        yield escape(environment.finalize(environment.getattr(environment.getattr((undefined(name='sc') if l_0_sc is missing else l_0_sc), 'journal_verification'), 'first_bad_position')))
        yield ')'
    else:
        pass
        yield 'not run'
    if environment.getattr(environment.getattr((undefined(name='sc') if l_0_sc is missing else l_0_sc), 'journal_verification'), 'message'):
        pass
        yield ': '
        yield escape(environment.finalize(environment.getattr(environment.getattr((undefined(name='sc') if l_0_sc is missing else l_0_sc), 'journal_verification'), 'message')))
    yield '</td></tr>\n<tr><th>Checkpoint</th><td>'
    yield escape(environment.finalize(environment.getattr(environment.getattr((undefined(name='sc') if l_0_sc is missing else l_0_sc), 'checkpoint'), 'statement')))
    if environment.getattr(environment.getattr((undefined(name='sc') if l_0_sc is missing else l_0_sc), 'checkpoint'), 'covering'):
        pass
        yield ' ('
        yield escape(environment.finalize(context.call((undefined(name='ev') if l_0_ev is missing else l_0_ev), [environment.getattr(environment.getattr((undefined(name='sc') if l_0_sc is missing else l_0_sc), 'checkpoint'), 'covering')])))
        yield ')'
    yield '</td></tr>\n<tr><th>Filters</th><td>skills: '
    yield escape(environment.finalize((t_4(context.eval_ctx, environment.getattr(environment.getattr((undefined(name='sc') if l_0_sc is missing else l_0_sc), 'filters'), 'skills'), ', ') or 'all')))
    yield '; publishers: '
    yield escape(environment.finalize((t_4(context.eval_ctx, environment.getattr(environment.getattr((undefined(name='sc') if l_0_sc is missing else l_0_sc), 'filters'), 'publishers'), ', ') or 'all')))
    yield '; max audit age: '
    yield escape(environment.finalize((t_5(environment.getattr(environment.getattr((undefined(name='sc') if l_0_sc is missing else l_0_sc), 'filters'), 'max_audit_age_seconds')) if (not t_7(environment.getattr(environment.getattr((undefined(name='sc') if l_0_sc is missing else l_0_sc), 'filters'), 'max_audit_age_seconds'))) else 'not checked')))
    yield '</td></tr>\n<tr><th>Policy versions in force</th><td>'
    l_1_loop = missing
    for l_1_pv, l_1_loop in LoopContext(environment.getattr((undefined(name='sc') if l_0_sc is missing else l_0_sc), 'policy_versions'), undefined):
        _loop_vars = {}
        pass
        yield 'v'
        yield escape(environment.finalize(environment.getattr(l_1_pv, 'version')))
        if (not t_7(environment.getattr(l_1_pv, 'position'))):
            pass
            yield ' ('
            yield escape(environment.finalize(context.call((undefined(name='ev') if l_0_ev is missing else l_0_ev), [l_1_pv], _loop_vars=_loop_vars)))
            yield ')'
        if (not environment.getattr(l_1_loop, 'last')):
            pass
            yield ', '
    l_1_loop = l_1_pv = missing
    yield ' (values under <a href="#policy">Audit policy</a>)</td></tr>\n</table>\n</section>\n\n<section id="findings">\n<h2>Findings</h2>\n'
    t_9 = 1
    for (l_1_sev, l_1_count, l_1_items) in (undefined(name='finding_groups') if l_0_finding_groups is missing else l_0_finding_groups):
        l_1_findings = resolve('findings')
        _loop_vars = {}
        pass
        yield '<h3>'
        yield escape(environment.finalize(t_2(l_1_sev)))
        yield ' ('
        yield escape(environment.finalize(l_1_count))
        yield ')</h3>\n'
        for l_2_piece in context.call((undefined(name='findings') if l_1_findings is missing else l_1_findings), l_1_items, _loop_vars=_loop_vars):
            _loop_vars = {}
            pass
            yield escape(environment.finalize(l_2_piece))
        l_2_piece = missing
        t_9 = 0
    l_1_sev = l_1_count = l_1_items = l_1_findings = missing
    if t_9:
        pass
        yield '<p>No findings.</p>\n'
    yield '</section>\n\n<section id="posture">\n<h2>Posture at the window end</h2>\n'
    t_10 = 1
    for l_1_chunk in (undefined(name='posture_chunks') if l_0_posture_chunks is missing else l_0_posture_chunks):
        _loop_vars = {}
        pass
        yield escape(environment.finalize(l_1_chunk))
        t_10 = 0
    l_1_chunk = missing
    if t_10:
        pass
        yield '<p>No version installed up to the window end.</p>\n'
    yield '</section>\n\n<section id="trust">\n<h2>Trust</h2>\n<h3>Keys at the window end</h3>\n'
    l_1_loop = missing
    t_11 = 1
    for l_1_k, l_1_loop in LoopContext((undefined(name='keys') if l_0_keys is missing else l_0_keys), undefined):
        _loop_vars = {}
        pass
        if environment.getattr(l_1_loop, 'first'):
            pass
            yield '<table>\n<tr><th>Publisher</th><th>Key id</th><th>Kind</th><th>State</th><th>Allowlisted</th><th>Pinned on first use</th><th>Revoked</th></tr>\n'
        yield '<tr><td>'
        yield escape(environment.finalize(environment.getattr(l_1_k, 'publisher')))
        yield '</td><td class="mono" title="'
        yield escape(environment.finalize(environment.getattr(l_1_k, 'key_hex')))
        yield '">'
        yield escape(environment.finalize(environment.getattr(l_1_k, 'key_id')))
        yield '</td><td>'
        yield escape(environment.finalize(environment.getattr(l_1_k, 'kind')))
        yield '</td><td>'
        yield escape(environment.finalize(environment.getattr(l_1_k, 'state')))
        yield '</td>\n'
        for l_2_act in (environment.getattr(l_1_k, 'allowlisted'), environment.getattr(l_1_k, 'pinned'), environment.getattr(l_1_k, 'revoked')):
            _loop_vars = {}
            pass
            yield '<td>'
            if l_2_act:
                pass
                yield escape(environment.finalize(environment.getattr(l_2_act, 'recorded_at')))
                yield ' by '
                yield escape(environment.finalize(context.call(environment.getattr((undefined(name='p') if l_0_p is missing else l_0_p), 'actor'), environment.getattr(l_2_act, 'actor'), _loop_vars=_loop_vars)))
                if environment.getattr(l_2_act, 'reason'):
                    pass
                    yield ': '
                    yield escape(environment.finalize(environment.getattr(l_2_act, 'reason')))
                if environment.getattr(l_2_act, 'first_skill_id'):
                    pass
                    yield ' (first '
                    yield escape(environment.finalize(environment.getattr(l_2_act, 'first_skill_id')))
                    yield ' '
                    yield escape(environment.finalize(environment.getattr(l_2_act, 'first_version')))
                    yield ')'
                yield ' ('
                yield escape(environment.finalize(context.call((undefined(name='ev') if l_0_ev is missing else l_0_ev), [l_2_act], _loop_vars=_loop_vars)))
                yield ')'
            else:
                pass
                yield '-'
            yield '</td>\n'
        l_2_act = missing
        yield '</tr>\n'
        if environment.getattr(l_1_loop, 'last'):
            pass
            yield '</table>\n'
        t_11 = 0
    l_1_loop = l_1_k = missing
    if t_11:
        pass
        yield '<p>No publisher key recorded.</p>\n'
    yield '<h3>Revocations in the window</h3>\n'
    l_1_loop = missing
    t_12 = 1
    for l_1_rv, l_1_loop in LoopContext((undefined(name='revocations') if l_0_revocations is missing else l_0_revocations), undefined):
        _loop_vars = {}
        pass
        yield '<p>Key <span class="mono">'
        yield escape(environment.finalize(environment.getattr(l_1_rv, 'key_id')))
        yield '</span> of '
        yield escape(environment.finalize(environment.getattr(l_1_rv, 'publisher')))
        yield ' revoked at '
        yield escape(environment.finalize(environment.getattr(l_1_rv, 'recorded_at')))
        yield ' by '
        yield escape(environment.finalize(context.call(environment.getattr((undefined(name='p') if l_0_p is missing else l_0_p), 'actor'), environment.getattr(l_1_rv, 'actor'), _loop_vars=_loop_vars)))
        yield ': '
        yield escape(environment.finalize(environment.getattr(l_1_rv, 'reason')))
        yield ' ('
        yield escape(environment.finalize(context.call((undefined(name='ev') if l_0_ev is missing else l_0_ev), [l_1_rv], _loop_vars=_loop_vars)))
        yield ')</p>\n<table><tr><th>Quarantined version</th><th>At</th><th>After the revocation</th><th>Evidence</th></tr>\n'
        t_13 = 1
        for l_2_q in environment.getattr(l_1_rv, 'quarantined'):
            _loop_vars = {}
            pass
            yield '<tr><td>'
            yield escape(environment.finalize(environment.getattr(l_2_q, 'skill_id')))
            yield ' '
            yield escape(environment.finalize(environment.getattr(l_2_q, 'version')))
            yield '</td><td>'
            yield escape(environment.finalize(environment.getattr(l_2_q, 'recorded_at')))
            yield '</td><td>'
            yield escape(environment.finalize(t_5(environment.getattr(l_2_q, 'delay_seconds'))))
            yield '</td><td>'
            yield escape(environment.finalize(context.call((undefined(name='ev') if l_0_ev is missing else l_0_ev), [l_2_q], _loop_vars=_loop_vars)))
            yield '</td></tr>\n'
            t_13 = 0
        l_2_q = missing
        if t_13:
            pass
            yield '<tr><td colspan="4">No version quarantined for this revocation by the window end.</td></tr>\n'
        yield '</table>\n'
        if environment.getattr(l_1_rv, 'not_quarantined'):
            pass
            yield '<p><strong>Installed versions signed by this key and not quarantined at the window end:</strong> '
            l_2_loop = missing
            for l_2_u, l_2_loop in LoopContext(environment.getattr(l_1_rv, 'not_quarantined'), undefined):
                _loop_vars = {}
                pass
                yield escape(environment.finalize(environment.getattr(l_2_u, 'skill_id')))
                yield ' '
                yield escape(environment.finalize(environment.getattr(l_2_u, 'version')))
                yield ' ('
                yield escape(environment.finalize(environment.getattr(l_2_u, 'status')))
                yield ')'
                if (not environment.getattr(l_2_loop, 'last')):
                    pass
                    yield ', '
            l_2_loop = l_2_u = missing
            yield '</p>'
        t_12 = 0
    l_1_loop = l_1_rv = missing
    if t_12:
        pass
        yield '<p>None.</p>\n'
    yield '<h3>Trust events in the window</h3>\n'
    l_1_loop = missing
    t_14 = 1
    for l_1_chunk, l_1_loop in LoopContext(t_1((undefined(name='trust_events') if l_0_trust_events is missing else l_0_trust_events), 256), undefined):
        l_1_entry_rows = resolve('entry_rows')
        _loop_vars = {}
        pass
        if environment.getattr(l_1_loop, 'first'):
            pass
            yield '<table>'
            yield escape(environment.finalize(context.call(environment.getattr((undefined(name='p') if l_0_p is missing else l_0_p), 'entry_head'), True, _loop_vars=_loop_vars)))
        yield escape(environment.finalize(context.call((undefined(name='entry_rows') if l_1_entry_rows is missing else l_1_entry_rows), l_1_chunk, True, _loop_vars=_loop_vars)))
        if environment.getattr(l_1_loop, 'last'):
            pass
            yield '</table>\n'
        t_14 = 0
    l_1_loop = l_1_chunk = l_1_entry_rows = missing
    if t_14:
        pass
        yield '<p>None.</p>\n'
    yield '</section>\n\n<section id="policy">\n<h2>Audit policy</h2>\n<table><tr><th>Version</th><th>Since</th><th>By</th><th>Reason</th><th>Values</th></tr>\n'
    for l_1_pv in environment.getattr((undefined(name='sc') if l_0_sc is missing else l_0_sc), 'policy_versions'):
        _loop_vars = {}
        pass
        yield '<tr><td>v'
        yield escape(environment.finalize(environment.getattr(l_1_pv, 'version')))
        if (not t_7(environment.getattr(l_1_pv, 'position'))):
            pass
            yield ' ('
            yield escape(environment.finalize(context.call((undefined(name='ev') if l_0_ev is missing else l_0_ev), [l_1_pv], _loop_vars=_loop_vars)))
            yield ')'
        yield '</td><td>'
        yield escape(environment.finalize((environment.getattr(l_1_pv, 'recorded_at') or 'defaults')))
        yield '</td><td>'
        yield escape(environment.finalize(context.call(environment.getattr((undefined(name='p') if l_0_p is missing else l_0_p), 'actor'), environment.getattr(l_1_pv, 'actor'), _loop_vars=_loop_vars)))
        yield '</td><td>'
        yield escape(environment.finalize(environment.getattr(l_1_pv, 'reason')))
        yield '</td>\n<td>'
        for (l_2_key, l_2_value) in t_3(environment.getattr(l_1_pv, 'values')):
            _loop_vars = {}
            pass
            yield '<span class="mono">'
            yield escape(environment.finalize(l_2_key))
            yield '</span> = <span class="mono">'
            yield escape(environment.finalize(t_6(l_2_value)))
            yield '</span>'
            if (l_2_key in environment.getattr(l_1_pv, 'changed')):
                pass
                yield ' <strong>(changed)</strong>'
            yield '<br>'
        l_2_key = l_2_value = missing
        yield '</td></tr>\n'
    l_1_pv = missing
    yield '</table>\n</section>\n\n<section id="timelines">\n<h2>What happened in the window, per skill</h2>\n'
    t_15 = 1
    for l_1_chunk in (undefined(name='timeline_chunks') if l_0_timeline_chunks is missing else l_0_timeline_chunks):
        _loop_vars = {}
        pass
        yield escape(environment.finalize(l_1_chunk))
        t_15 = 0
    l_1_chunk = missing
    if t_15:
        pass
        yield '<p>No skill event in the window.</p>\n'
    yield '</section>\n\n<section id="rejections">\n<h2>Rejected artifacts in the window</h2>\n'
    l_1_loop = missing
    t_16 = 1
    for l_1_chunk, l_1_loop in LoopContext(t_1((undefined(name='rejections') if l_0_rejections is missing else l_0_rejections), 256), undefined):
        l_1_rejection_rows = resolve('rejection_rows')
        _loop_vars = {}
        pass
        if environment.getattr(l_1_loop, 'first'):
            pass
            yield '<table><tr><th>#, hash</th><th>Time</th><th>Actor</th><th>Artifact</th><th>Error</th><th>Skill</th><th>Message</th></tr>\n'
        yield escape(environment.finalize(context.call((undefined(name='rejection_rows') if l_1_rejection_rows is missing else l_1_rejection_rows), l_1_chunk, _loop_vars=_loop_vars)))
        if environment.getattr(l_1_loop, 'last'):
            pass
            yield '</table>\n'
        t_16 = 0
    l_1_loop = l_1_chunk = l_1_rejection_rows = missing
    if t_16:
        pass
        yield '<p>None.</p>\n'
    yield '</section>\n\n<section id="other-events">\n<h2>Policy, checkpoint and other events in the window</h2>\n'
    l_1_loop = missing
    t_17 = 1
    for l_1_chunk, l_1_loop in LoopContext(t_1((undefined(name='other_events') if l_0_other_events is missing else l_0_other_events), 256), undefined):
        l_1_entry_rows = resolve('entry_rows')
        _loop_vars = {}
        pass
        if environment.getattr(l_1_loop, 'first'):
            pass
            yield '<table>'
            yield escape(environment.finalize(context.call(environment.getattr((undefined(name='p') if l_0_p is missing else l_0_p), 'entry_head'), True, _loop_vars=_loop_vars)))
        yield escape(environment.finalize(context.call((undefined(name='entry_rows') if l_1_entry_rows is missing else l_1_entry_rows), l_1_chunk, True, _loop_vars=_loop_vars)))
        if environment.getattr(l_1_loop, 'last'):
            pass
            yield '</table>\n'
        t_17 = 0
    l_1_loop = l_1_chunk = l_1_entry_rows = missing
    if t_17:
        pass
        yield '<p>None.</p>\n'
    yield '</section>\n\n<section id="appendix">\n<h2>Appendix: cited events</h2>\n<p class="meta">The events claims cite that are not shown above as entries of the window (those are their own citation: their rows carry their position and hash). Check any event with <code>skills journal --json --since POSITION-1 --until POSITION</code>: the event printed there must have this hash.</p>\n'
    l_1_loop = missing
    t_18 = 1
    for l_1_chunk, l_1_loop in LoopContext(t_1((undefined(name='cited') if l_0_cited is missing else l_0_cited), 256), undefined):
        l_1_cited_rows = resolve('cited_rows')
        _loop_vars = {}
        pass
        if environment.getattr(l_1_loop, 'first'):
            pass
            yield '<table><tr><th>Position</th><th>Hash</th><th>Kind</th><th>Recorded at</th><th>Stream</th><th>Actor</th></tr>\n'
        yield escape(environment.finalize(context.call((undefined(name='cited_rows') if l_1_cited_rows is missing else l_1_cited_rows), l_1_chunk, _loop_vars=_loop_vars)))
        if environment.getattr(l_1_loop, 'last'):
            pass
            yield '</table>\n'
        t_18 = 0
    l_1_loop = l_1_chunk = l_1_cited_rows = missing
    if t_18:
        pass
        yield '<p>None: every cited event is shown as an entry above.</p>\n'
    yield '</section>\n</body>\n</html>'

blocks = {}
debug_info = '3=76&4=79&5=82&6=85&11=89&13=91&14=95&19=97&20=100&21=107&23=110&26=116&28=119&34=129&35=131&36=137&37=147&38=170&39=172&40=176&41=192&42=199&43=206&49=222&50=227&51=231&59=243&66=255&67=258&70=262&71=272&72=276&75=301&81=312&82=316&84=329&87=349&92=375&100=393&101=397&102=410&109=427&115=439&116=446&123=458&131=478&132=485'