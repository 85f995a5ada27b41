"""Page words in zh-CN (default) and English, and how a request picks its language.

Contract: :data:`LANGS` are the page languages, zh first (the default).
:func:`lang_of` takes the ``lang`` query parameter, else the ``sf_lang``
cookie, else zh. :func:`translator` returns ``t(key, **fill)`` for one
language; a key missing from :data:`MESSAGES` is a bug and raises KeyError
(tests render every page in both languages). Domain words follow DESIGN §8.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

from starlette.requests import Request

Lang = Literal["zh", "en"]
LANGS: tuple[Lang, ...] = ("zh", "en")
LANG_COOKIE = "sf_lang"
HTML_LANG: dict[Lang, str] = {"zh": "zh-CN", "en": "en"}

MESSAGES: dict[str, tuple[str, str]] = {
    "app": ("向阳花 · 复吸与脱管失控预警", "Sunflower · relapse and loss-of-contact early warning"),
    "app_short": ("向阳花", "Sunflower"),
    "skip": ("跳到正文", "Skip to content"),
    "switch_lang": ("English", "中文"),
    "switch_lang_label": ("Switch to English", "切换到中文"),
    "sign_in": ("登录", "Sign in"),
    "sign_out": ("退出登录", "Sign out"),
    "username": ("用户名", "User name"),
    "token": ("访问令牌", "Access token"),
    "token_help": (
        "访问令牌由系统管理员发给您（以 sf_ 开头的一长串字符）。忘记或过期请联系管理员重新发放。",
        "Your administrator gives you the access token (a long text starting with sf_). "
        "If you lost it or it expired, ask them for a new one.",
    ),
    "sign_in_failed": (
        "用户名或访问令牌不正确，或令牌已失效。",
        "Wrong user name or token, or the token is no longer valid.",
    ),
    "form_expired": ("表单已过期，请重新提交。", "The form expired; please submit it again."),
    "signed_out": ("您已退出登录。", "You are signed out."),
    "session_note": (
        "登录状态保持至多12小时；用完请退出登录。",
        "A sign-in lasts at most 12 hours; sign out when you are done.",
    ),
    "signed_in_as": ("当前用户", "Signed in as"),
    "role_worker": ("禁毒社工", "social worker"),
    "role_supervisor": ("督导", "supervisor"),
    "role_model_owner": ("模型负责人", "model owner"),
    "role_integrator": ("数据对接方", "integrator"),
    "role_admin": ("管理员", "administrator"),
    "nav_my_list": ("我的今日名单", "My list today"),
    "nav_town": ("街镇/区督导", "Town / district"),
    "nav_models": ("模型状态", "Model health"),
    "nav_api": ("接口文档", "API docs"),
    "my_list_title": ("我的今日名单", "My list today"),
    "caseload_title": ("社工 {worker} 的名单", "Caseload of worker {worker}"),
    "as_of": ("评分日期", "Scored on"),
    "no_run": (
        "还没有已发布的评分结果。每日评分完成后这里会显示名单；如长时间没有，请联系系统管理员。",
        "No scores have been published yet. The list appears here once the daily scoring "
        "has run; if it stays empty, contact your administrator.",
    ),
    "people_n": ("{n} 人", "{n} people"),
    "showing": ("显示 {shown} / {total} 人", "Showing {shown} of {total}"),
    "filters": ("筛选", "Filters"),
    "rank_by": ("排序依据", "Rank by"),
    "relapse": ("复吸", "relapse"),
    "loss_of_contact": ("脱管失控", "lost contact"),
    "relapse_risk": ("复吸风险", "Relapse risk"),
    "loss_of_contact_risk": ("脱管失控风险", "Lost-contact risk"),
    "band": ("风险等级", "Risk band"),
    "all_bands": ("全部等级", "All bands"),
    "alerts": ("预警", "Alerts"),
    "any_alert": ("仅看有预警的人", "Only people with an alert"),
    "alert_kind": ("预警类型", "Alert type"),
    "any": ("全部", "Any"),
    "cohort": ("一批一策人群", "Cohort"),
    "apply": ("应用筛选", "Apply filters"),
    "reset": ("清除筛选", "Clear filters"),
    "print": ("打印版", "Printable version"),
    "print_now": ("打印", "Print"),
    "back": ("返回", "Back"),
    "rank": ("排名", "Rank"),
    "person": ("人员编号", "Person"),
    "probability": ("{h}天内概率", "{h}-day probability"),
    "probability_meaning": (
        "概率：未来{h}天内发生该风险的可能性；协议在{h}天内期满的，只算到期满为止。",
        "Probability: the chance of the outcome within the next {h} days, or until the "
        "agreement's planned end if that comes first.",
    ),
    "change": ("较上次", "Since last score"),
    "top_reason": ("主要原因", "Top reason"),
    "other_outcome": ("另一项风险", "Other risk"),
    "no_change": ("无变化", "no change"),
    "new_score": ("首次评分", "first score"),
    "pp_up": ("升 {pp} 个百分点", "up {pp} points"),
    "pp_down": ("降 {pp} 个百分点", "down {pp} points"),
    "band_up": ("等级上升", "band went up"),
    "band_down": ("等级下降", "band went down"),
    "empty_list": ("没有符合筛选条件的人。", "Nobody matches these filters."),
    "open_person": ("查看 {pid}", "Open {pid}"),
    "print_footer": (
        "打印时间 {at} · 仅供工作使用，请妥善保管",
        "Printed {at} · for work use only, keep safe",
    ),
    "sort_priority": ("今日优先（两项风险综合）", "Who first today (both risks)"),
    "sort_relapse": ("复吸风险", "Relapse risk"),
    "sort_loss_of_contact": ("脱管失控风险", "Lost-contact risk"),
    "sort_person": ("人员编号", "Person id"),
    "priority_rule": (
        "今日优先：先看两项风险中较高的等级，同等级时有预警的在前，再按概率高出该项常见水平的倍数排。",
        "Who first today: the higher band of the two risks first; within a band, people "
        "with an alert first, then by how many times above its usual level either "
        "probability is.",
    ),
    "plan_short": ("建议", "Suggested"),
    "background": ("背景", "background"),
    "no_reason": ("没有突出的原因", "no stand-out reason"),
    "no_previous": (
        "这是第一次发布的评分，还没有上一次评分可比较。",
        "This is the first published scoring run; there is no earlier score to compare with.",
    ),
    "no_previous_short": ("—", "—"),
    "age_today": ("今天的评分", "today's scores"),
    "age_yesterday": ("1 天前", "1 day ago"),
    "age_days": ("{n} 天前", "{n} days ago"),
    "outcome": ("风险", "Risk"),
    "band_legend_caption": (
        "风险等级的划分（{h}天内概率，两项风险各有阈值）",
        "How bands are set ({h}-day probability; each risk has its own thresholds)",
    ),
    "band_legend_why": (
        "两项风险的常见水平不同（复吸约10%，脱管失控约3%），等级线约在各自常见水平的1倍、2倍、4倍处，"
        "所以同样的百分比可能是不同的等级：例如脱管失控5%已是中风险，复吸10%才是中风险。",
        "The two risks have different usual levels (relapse about 10%, lost contact about 3%); "
        "the band lines sit near 1×, 2× and 4× each risk's usual level, so the same "
        "percentage can be a different band: 5% lost contact is already medium, relapse "
        "becomes medium at 10%.",
    ),
    "search_person": ("查找人员编号", "Find a person id"),
    "search_help": ("输入编号的全部或一部分", "All or part of the id"),
    "export_xlsx": ("导出 Excel", "Export to Excel"),
    "export_csv": ("导出 CSV", "Export to CSV"),
    "since_title": ("自上次评分（{date}）以来", "Since the last scores ({date})"),
    "since_title_first": ("自评分以来", "Since the scores"),
    "since_new_alerts": ("新预警", "New alerts"),
    "since_new_events": (
        "{date} 起新记录的事件（不在今天的评分里）",
        "Events recorded from {date} on (not in today's scores)",
    ),
    "n_entries": ("{n} 条", "({n})"),
    "since_nothing": ("没有等级变化、新预警或新记录。", "No band change, new alert or new record."),
    "new_tag": ("新", "new"),
    "not_in_scores": ("评分后新记录，未计入评分", "recorded after the scores, not in them"),
    "nav_admin_users": ("账号", "Accounts"),
    "nav_admin_audit": ("审计日志", "Audit log"),
    "admin_users": ("账号与令牌", "Accounts and tokens"),
    "admin_users_help": (
        "只显示令牌数量，从不显示令牌本身。新建账号、发放或吊销令牌请用服务器上的"
        "账号管理命令（见运维文档）。",
        "Only the number of tokens is shown, never a token. Create accounts and issue or "
        "revoke tokens with the account command on the server (see the operations docs).",
    ),
    "role": ("角色", "Role"),
    "scope": ("范围", "Scope"),
    "account_active": ("启用", "Active"),
    "api_tokens": ("有效接口令牌", "Valid API tokens"),
    "web_sessions": ("有效网页登录", "Open web sessions"),
    "created_at": ("创建日期", "Created"),
    "admin_audit": ("审计日志", "Audit log"),
    "admin_audit_help": (
        "最新的 {n} 条记录（只追加、不可修改）；可按用户名、操作或人员编号筛选。",
        "The newest {n} lines (append-only, never changed); filter by user, action or person.",
    ),
    "audit_action": ("操作", "Action"),
    "audit_at": ("时间", "When"),
    "audit_detail": ("详情", "Detail"),
    "audit_none": ("没有符合条件的记录。", "No matching lines."),
    "follow_up_title": ("跟进清单（未完成的建议措施）", "Follow-up (open plan items)"),
    "nav_follow_up": ("跟进清单", "Follow-up"),
    "follow_up_rule": (
        "到期日：自今天的评分（或最近一次记为“未完成”的那天）起，极高风险1天、高风险3天、中风险7天、低风险14天。"
        "记为“已完成”或“不适合”的措施30天内不再列出。",
        "Due: from today's scores (or the day it was last recorded not done), 1 day at very "
        "high, 3 at high, 7 at medium, 14 at low. An item recorded done or not suitable is "
        "left out for 30 days.",
    ),
    "follow_up_none": ("没有未完成的建议措施。", "No open plan items."),
    "due": ("到期日", "Due"),
    "overdue": ("已逾期", "overdue"),
    "last_record": ("最近记录", "Last record"),
    "not_recorded": ("还没有记录", "nothing recorded yet"),
    "back_to_list": ("返回名单", "Back to the list"),
    "groups_by": ("一类一策、一批一策按", "Groups and cohorts by"),
    "people_by_band": ("各等级人数（两项风险取高）", "People per band (higher of the two)"),
    "district_total": ("全区合计", "District total"),
    "district_help": (
        "点列标题排序：各等级人数按极高、高风险人数从多到少；执行率、就业率从低到高；"
        "脱管失控人数、人均管理人数从高到低。",
        "Click a column title to sort: bands by very high, then high, most first; execution "
        "and employment rate lowest first; lost contact and people per worker highest first.",
    ),
    "print_notes": ("备注", "Notes"),
    "print_done": ("已完成（签名/日期）", "Done (sign/date)"),
    "person_title": ("人员 {pid}", "Person {pid}"),
    "program": ("措施", "Programme"),
    "community_detox": ("社区戒毒", "community detox"),
    "community_rehab": ("社区康复", "community rehabilitation"),
    "agreement": ("协议期", "Agreement"),
    "worker": ("社工", "Worker"),
    "town": ("街镇", "Town"),
    "district": ("区", "District"),
    "scores": ("当前评分", "Current scores"),
    "rank_in": ("名单第 {r}/{n} 位", "rank {r} of {n} in caseload"),
    "rank_town": ("街镇第 {r}/{n} 位", "rank {r} of {n} in town"),
    "model": ("模型", "Model"),
    "trend": ("近几个月的风险走势", "Risk over recent months"),
    "trend_empty": ("评分记录不足，暂无走势。", "Not enough scores yet for a trend."),
    "trend_desc": (
        "横轴为评分日期，纵轴为{h}天内概率。",
        "Across: scoring date; up: {h}-day probability.",
    ),
    "drivers": ("风险原因", "Why: the drivers"),
    "drivers_for": ("{outcome}：主要原因", "{outcome}: main drivers"),
    "raises": ("▲ 升高风险", "▲ raises risk"),
    "lowers": ("▼ 降低风险", "▼ lowers risk"),
    "drivers_help": (
        "近期迹象是最近发生、工作可以跟进的情况；背景情况是不会改变的事实，只作参考。"
        "▲ 推高风险，▼ 降低风险。",
        "Recent signs are things that happened lately and work can follow up; background "
        "facts do not change and are context only. ▲ raises the risk, ▼ lowers it.",
    ),
    "drivers_recent": ("近期迹象", "Recent signs"),
    "drivers_background": (
        "背景情况（不可干预，仅供参考）",
        "Background (fixed facts, context only)",
    ),
    "plan_because": ("依据：", "Because: "),
    "no_drivers": ("没有存储的解释。", "No stored explanation."),
    "plan": ("建议措施（一人一策）", "Suggested plan items (一人一策)"),
    "plan_help": (
        "点一下记录结果；备注可选。",
        "One click records the result; the note is optional.",
    ),
    "no_plan": ("没有建议措施。", "No suggested plan items."),
    "note": ("备注（可选）", "Note (optional)"),
    "status_done": ("已完成", "Done"),
    "status_not_done": ("未完成", "Not done"),
    "status_not_suitable": ("不适合", "Not suitable"),
    "last_recorded": ("最近记录：{status}（{at}，{by}）", "Last recorded: {status} ({at}, {by})"),
    "recorded": ("已记录，并已加入时间线。", "Recorded, and added to the timeline."),
    "other_work": ("记录其他工作或对评分的意见", "Record other work, or feedback on the score"),
    "work_kind": ("类型", "Kind"),
    "kind_home_visit": ("家访", "home visit"),
    "kind_referral": ("转介", "referral"),
    "kind_feedback": ("对评分的意见", "feedback on the score"),
    "kind_other": ("其他", "other"),
    "kind_plan_item": ("建议措施", "plan item"),
    "agrees": ("您是否认同这个评分？", "Do you agree with the score?"),
    "agree_yes": ("认同", "Agree"),
    "agree_no": ("不认同", "Disagree"),
    "agree_unsaid": ("不表态", "No opinion"),
    "not_listed_exit": (
        "不在今日名单：协议已于 {date} 解除/终止（{result}）。",
        "Not on today's list: the programme ended on {date} ({result}).",
    ),
    "not_listed_lost": (
        "不在今日名单：自 {date} 起脱管失控（失去联系），此后没有恢复联系的记录。"
        "请按脱管失控处置流程查找。",
        "Not on today's list: lost contact since {date}, with no contact restored since. "
        "Follow the lost-contact procedure.",
    ),
    "not_listed_transferred": (
        "不在今日名单：已于 {date} 跨区域转出，由转入地负责。",
        "Not on today's list: transferred out on {date}; the receiving district is in charge.",
    ),
    "not_listed_ended": (
        "不在今日名单：协议已于 {date} 期满。",
        "Not on today's list: the agreement ended on {date}.",
    ),
    "not_listed_not_started": (
        "不在今日名单：协议从 {date} 开始。",
        "Not on today's list: the agreement starts on {date}.",
    ),
    "not_listed_other": (
        "不在 {as_of} 的评分人群中（不在社区戒毒/康复期内）。",
        "Not among the people scored on {as_of} (not in the programme then).",
    ),
    "work_date": ("工作日期", "Date of the work"),
    "work_date_help": (
        "家访等工作实际进行的日期（默认今天）；会写在记录的开头。",
        "When the home visit or other work took place (default today); it is written at the "
        "start of the record.",
    ),
    "work_on": ("工作日期 {date}", "done on {date}"),
    "agree_help": (
        "不认同：您认为这个评分明显偏高或偏低。请在备注里写明原因（例如系统不知道的情况）；"
        "意见会记入时间线，供督导和模型负责人复核，不会改变今天的评分。",
        "Disagree: you think the score is clearly too high or too low. Say why in the note "
        "(for example something the system does not know); it goes into the timeline for "
        "supervisors and model owners to review and does not change today's score.",
    ),
    "save": ("保存记录", "Save"),
    "what_if": ("假设分析（只计算，不保存）", "What if (computed, never stored)"),
    "what_if_help": (
        "改变可干预的情况，看风险会怎样变化。",
        "Change what work can change, and see how the risk moves.",
    ),
    "now": ("现在", "Now"),
    "change_to": ("改为", "Change to"),
    "yes": ("是", "yes"),
    "no": ("否", "no"),
    "compute": ("计算", "Compute"),
    "what_if_none": ("没有改变任何输入。", "No input was changed."),
    "what_if_unavailable": ("暂时无法计算：{why}", "Cannot compute now: {why}"),
    "what_if_result": ("假设结果", "What-if result"),
    "before": ("原来", "Before"),
    "after": ("假设后", "After"),
    "no_inputs": ("没有可调整的输入。", "No inputs to change."),
    "timeline": ("时间线（事件与工作记录）", "Timeline (events and recorded work)"),
    "timeline_empty": ("没有记录。", "Nothing recorded."),
    "source": ("来源", "source"),
    "by": ("记录人", "by"),
    "current_alerts": ("当前预警", "Current alerts"),
    "no_alerts": (
        "没有规则预警（报到/检测逾期、新阳性、拒检、购药、转入未接手）；风险高低请看上面的评分和原因。",
        "No rule alert (overdue check-in or test, new positive, refusal, medicine, transfer "
        "without a worker); see the scores and reasons above for the risk.",
    ),
    "cohorts_of": ("所属人群", "Cohorts"),
    "not_found_title": ("找不到", "Not found"),
    "not_found": (
        "找不到此页面或人员（或不在您的工作范围内）。",
        "No such page or person (or not in your scope).",
    ),
    "forbidden_title": ("无权访问", "Not allowed"),
    "forbidden_role": ("您的角色不能使用此页面。", "Your role may not use this page."),
    "integrator_home": (
        "数据对接账号没有网页，请使用接口：",
        "Integrator accounts have no pages; use the API:",
    ),
    "town_title": ("{town}（{district}）督导视图", "{town} ({district}): supervision"),
    "district_title": ("{district} 督导视图", "{district}: supervision"),
    "choose_district": ("选择区", "Choose a district"),
    "kpis": ("工作指标", "KPIs"),
    "execution_rate": ("执行率", "Execution rate"),
    "lost_contact_count": ("脱管失控人数", "Lost contact"),
    "employment_rate": ("就业率", "Employment rate"),
    "people_per_worker": ("人均管理人数（标准1:20）", "People per worker (target 1:20)"),
    "over_ratio": ("超过1:20", "above 1:20"),
    "within_ratio": ("符合1:20", "within 1:20"),
    "ordered": ("责令人数", "Ordered"),
    "active": ("在册人数", "In programme"),
    "workers_n": ("社工人数", "Workers"),
    "towns": ("街镇", "Towns"),
    "open_town": ("查看 {town}", "Open {town}"),
    "worker_lists": ("各社工名单", "Workers' lists"),
    "caseload": ("名单人数", "Caseload"),
    "with_alert": ("有预警", "With an alert"),
    "top_people": ("风险最高的人", "Highest risk"),
    "open_col": ("打开", "Open"),
    "full_list": ("完整名单", "Full list"),
    "groups": ("一类一策：主要原因相同的人", "一类一策: people sharing a main driver"),
    "groups_help": (
        "按每人最主要的、可干预的升高风险原因分组；“常见伴随”是组内最常见的另一个原因。",
        "Grouped by each person's strongest risk-raising driver that work can change; "
        "'often with' is the group's most common other driver.",
    ),
    "often_with": ("常见伴随", "often with"),
    "single_groups": ("只有1人的原因（{n} 组）", "Drivers shared by nobody else ({n} groups)"),
    "not_actionable": (
        "主要原因是背景情况，无法直接干预；请关注其他可干预的原因。",
        "The main driver is background that work cannot change; look at the other drivers.",
    ),
    "suggested": ("建议", "suggested"),
    "members": ("成员", "Members"),
    "no_groups": ("没有分组。", "No groups."),
    "cohorts": ("一批一策：需要批量安排的人群", "一批一策: cohorts to plan for together"),
    "cohort_agreement_ending": ("协议60天内期满", "Agreement ends within 60 days"),
    "cohort_transferred_in_recently": (
        "本月转入（近30天跨区域转入）",
        "Transferred in this month (last 30 days)",
    ),
    "cohort_first_90_days": (
        "出所后前3个月（进入项目90天内）",
        "First 3 months after release (first 90 days)",
    ),
    "all_members": ("展开其余 {n} 人", "Show the other {n}"),
    "ungrouped": (
        "没有可干预的主要原因的人（{n} 人）：升高风险的只有背景情况、关注信号或零次计数",
        "People with no sign work can act on ({n}): only background facts, signs of concern "
        "or zero counts raise their risk",
    ),
    "cohort_plan_agreement_ending": (
        "批量安排：期满评估谈话，落实就业、家庭和社区支持的衔接，期满前完成最后一次检测。",
        "Plan together: an end-of-agreement review, hand-over to jobs, family and community "
        "support, a last test before the end.",
    ),
    "cohort_plan_transferred_in_recently": (
        "批量安排：转衔交接走访，核对原协议与检测记录，一周内首次见面。",
        "Plan together: a transfer hand-over visit, check the earlier agreement and test "
        "records, first meeting within a week.",
    ),
    "cohort_plan_first_90_days": (
        "批量安排：出所后前3个月复吸风险最高——加密报到和检测，安排家访与同伴教育或互助小组。",
        "Plan together: the first 3 months carry the highest relapse risk — more frequent "
        "check-ins and tests, home visits and peer education or support groups.",
    ),
    "cohort_empty": ("无", "none"),
    "model_health": ("模型状态", "Model health"),
    "monitor": ("模型监测", "Model monitoring"),
    "monitor_none": (
        "尚无监测结果：每次评分后会自动监测。",
        "No monitoring results yet: the monitor runs after every scoring run.",
    ),
    "monitor_on": ("{date}的监测", "Monitored on {date}"),
    "monitor_level_ok": ("正常", "ok"),
    "monitor_level_watch": ("需要关注", "watch"),
    "monitor_level_retrain": ("建议重新训练", "retrain recommended"),
    "monitor_expected": (
        "按概率估计的前10%名单命中率（各评分日）",
        "Expected share of the top-10% list who will have the outcome (by scoring date)",
    ),
    "monitor_realised": (
        "已揭晓的前10%名单实际命中率（各评分日）",
        "Realised share of the top-10% list who had the outcome, once known (by scoring date)",
    ),
    "monitor_realised_none": (
        "名单结果需在评分日后约三个半月才能揭晓，暂无实际命中率。",
        "A list's outcomes are known about three and a half months after its date: none yet.",
    ),
    "monitor_en_note": (
        "详细说明为中文。",
        "The detailed sentences are in Chinese (switch to 中文 to read them).",
    ),
    "monitor_towns": (
        "{outcome}：各乡镇（街道）{date}的监测",
        "{outcome}: towns monitored on {date}",
    ),
    "monitor_town": ("乡镇（街道）", "Town"),
    "monitor_town_level": ("结论", "Verdict"),
    "monitor_town_expected": ("按概率估计的前10%名单命中率", "Expected precision of the top 10%"),
    "monitor_town_realised": ("已揭晓的实际命中率", "Realised precision, once known"),
    "monitor_town_realised_on": ("{value}（{date}的名单）", "{value} (list of {date})"),
    "monitor_town_gap": ("实际 − 估计", "Realised − expected"),
    "monitor_town_gap_points": ("{points}个百分点", "{points} points"),
    "monitor_town_drift": ("变化最大的输入", "Input that moved most"),
    "monitor_town_drift_value": ("{what}（稳定性指数{psi}）", "{what} (PSI {psi})"),
    "monitor_town_drift_none": ("无明显变化", "none moved noticeably"),
    "monitor_town_unknown": ("暂无", "not yet"),
    "champion": ("在用模型", "Model in use"),
    "version": ("版本", "Version"),
    "trained_at": ("训练时间", "Trained"),
    "loaded_at": ("加载时间", "Loaded"),
    "metrics": ("最新评估指标", "Latest evaluation"),
    "not_loaded": ("未加载：{why}", "not loaded: {why}"),
    "runs": ("最近的评分运行", "Recent scoring runs"),
    "run_status": ("状态", "Status"),
    "persons_scored": ("评分人数", "People scored"),
    "seconds": ("用时（秒）", "Seconds"),
    "finished_at": ("完成时间", "Finished"),
    "band_thresholds": (
        "风险等级阈值（{h}天内概率下限：中/高/极高）",
        "Band thresholds ({h}-day probability, lower bounds of medium/high/very high)",
    ),
    "legend": ("图例", "Legend"),
    "stale": (
        "今天的评分尚未发布；之后记录的事件不在评分里，请看时间线。",
        "today's run is not published yet; events recorded since are not in the scores "
        "(see the timeline).",
    ),
    "run_published": ("已发布", "published"),
    "run_replaced": ("已被重跑替换", "replaced by a rerun"),
    "input": ("可干预的情况", "What work can change"),
    "earlier": ("更早的记录（{n} 条）", "Earlier entries ({n})"),
    # ---- issue 17: due lists, duties view (targets, escalation, medicine, bases)
    "nav_due": ("到期事项", "Due this week"),
    "nav_duties": ("责任与预警", "Targets and warnings"),
    "due_title": ("本周到期与逾期事项", "Due this week and overdue"),
    "due_rule": (
        "按规定频次：报到（前6个月每2周，至12个月每月，第2年每2个月，第3年每3个月）；"
        "尿检（第1年每月，第2年每2个月，第3年每3个月）；毛发检测约每6个月；家访。"
        "逾期超过7天即升级为预警。",
        "By the schedule: check-ins (every 2 weeks to month 6, monthly to month 12, every "
        "2 months in year 2, every 3 in year 3); urine tests (monthly in year 1, every 2 "
        "months in year 2, every 3 in year 3); hair tests about every 6 months; home visits. "
        "More than 7 days late escalates to an alert.",
    ),
    "due_none": ("本周没有到期或逾期事项。", "Nothing due this week and nothing overdue."),
    "due_status": ("状态", "Status"),
    "duty": ("事项", "Duty"),
    "due_on": ("应完成日期", "Due on"),
    "last_done": ("上次完成", "Last done"),
    "never_done": ("进入项目以来未做过", "never since the programme started"),
    "due_escalated": ("逾期{n}天（已升级）", "{n} days overdue (escalated)"),
    "due_overdue": ("逾期{n}天", "{n} days overdue"),
    "due_due": ("{n}天后到期", "due in {n} days"),
    "duties_title": ("{place}：目标责任与预警", "{place}: targets and warnings"),
    "open_duties": (
        "目标责任、逾期升级、特殊药品预警与安置基地",
        "Targets, overdue escalation, medicine warnings and placement bases",
    ),
    "back_to_town": ("返回街镇视图", "Back to the town view"),
    "targets": ("目标责任书完成情况", "KPIs against the responsibility targets"),
    "targets_help": (
        "目标来自目标责任书配置（targets.yaml）；增长目标以签订的基数或一年前的数值为基数，没有基数时不作判断。",
        "Targets come from the responsibility-target configuration (targets.yaml); growth "
        "targets use the signed baseline or the figure a year before, and give no verdict "
        "without one.",
    ),
    "kpi": ("指标", "KPI"),
    "kpi_value": ("当前", "Now"),
    "kpi_target": ("目标", "Target"),
    "kpi_met": ("是否达标", "Met"),
    "kpi_execution_rate": ("执行率", "execution rate"),
    "kpi_lost_contact": ("脱管人数", "lost contact"),
    "kpi_abstinent_3y": ("戒断三年未复吸人数（近12个月）", "abstinent 3 years (last 12 months)"),
    "kpi_employment_rate": ("就业率", "employment rate"),
    "kpi_people_per_worker": ("每名社工管理人数", "people per worker"),
    "no_baseline": ("无基数", "no baseline"),
    "growth_of": ("（基数{base}）", "(baseline {base})"),
    "rule_at_least": ("≥", "≥"),
    "rule_at_most": ("≤", "≤"),
    "rule_growth": ("≥", "≥"),
    "met": ("达标", "met"),
    "not_met": ("未达标", "not met"),
    "escalation": ("逾期升级", "Overdue escalation"),
    "escalated_n": ("已升级{n}项", "{n} escalated"),
    "overdue_n": ("逾期{n}项", "{n} overdue"),
    "nothing_overdue": ("无逾期", "none overdue"),
    "targets_missed": ("未达目标", "Below target"),
    "targets_all_met": (
        "各项指标均达到目标（或尚无基数）",
        "Every KPI meets its target (or has no baseline yet)",
    ),
    "escalation_help": (
        "各社工名下本周到期、已逾期（7天内）和已升级（逾期超过7天，即报到或检测逾期预警）的事项数。",
        "Per worker: duties due this week, overdue (up to 7 days) and escalated (more than "
        "7 days: the overdue check-in or test alert).",
    ),
    "due_escalated_n": ("已升级", "Escalated"),
    "due_overdue_n": ("已逾期", "Overdue"),
    "due_due_n": ("本周到期", "Due this week"),
    "escalated_items": ("查看全部{n}项已升级事项", "All {n} escalated duties"),
    "medicine_warnings": ("特殊药品销售追踪预警", "Controlled-medicine warnings"),
    "medicine_help": (
        "分级：关注（新购买）、警示（7天或30天购买量超限、购买量骤增）、严重（30天内在3家以上药店购买）。下列为近30天购买记录。",
        "Graded: notice (a new purchase), warning (a 7- or 30-day quantity above its "
        "limit, a sharp rise), serious (3 or more pharmacies in 30 days). Purchases of the "
        "last 30 days are listed.",
    ),
    "medicine_none": ("没有特殊药品预警。", "No controlled-medicine warning."),
    "level": ("等级", "Level"),
    "level_1": ("关注", "notice"),
    "level_2": ("警示", "warning"),
    "level_3": ("严重", "serious"),
    "purchases_30d": ("近30天购买", "Purchases, last 30 days"),
    "pharmacy_unknown": ("药店未知", "pharmacy unknown"),
    "bases": ("就业安置基地补贴", "Placement bases: subsidies"),
    "bases_help": (
        "近3年安置人数；每人参保满12个月计入达标人数；达标满5人一次性补贴10万元，另按每名安置人员社保费用的50%补贴。",
        "People placed in the last 3 years; each insured for 12 months or more qualifies; "
        "5 qualifying earn 100,000 yuan once, and bases get 50 % of each placed person's "
        "social-insurance cost.",
    ),
    "bases_none": ("没有登记的安置基地。", "No placement base registered."),
    "download_xlsx": ("下载 Excel", "Download Excel"),
    "download_csv": ("下载 CSV", "Download CSV"),
    "base": ("基地", "Base"),
    "placed": ("安置人数", "Placed"),
    "qualifying": ("参保满1年", "Insured 1 year+"),
    "eligible": ("达标", "eligible"),
    "lump_sum_due": ("一次性补贴（元）", "One-off sum (yuan)"),
    "insurance_subsidy": ("社保补贴（元）", "Insurance subsidy (yuan)"),
    "total_due": ("应补贴合计（元）", "Total due (yuan)"),
    "paid_on": ("已于{day}发放", "paid on {day}"),
}

ROLE_KEYS = {
    "worker": "role_worker",
    "supervisor": "role_supervisor",
    "model_owner": "role_model_owner",
    "integrator": "role_integrator",
    "admin": "role_admin",
}

Translate = Callable[..., str]


def lang_of(request: Request) -> Lang:
    """The page language: ``?lang=``, else the cookie, else zh."""
    for candidate in (request.query_params.get("lang"), request.cookies.get(LANG_COOKIE)):
        if candidate == "zh":
            return "zh"
        if candidate == "en":
            return "en"
    return "zh"


def translator(lang: Lang, horizon: str = "90") -> Translate:
    """``t(key, **fill)`` in ``lang``; ``{h}`` is the probability's horizon in days
    (the shown run's champions', :func:`serving.queries.horizon_text`)."""
    index = LANGS.index(lang)

    def t(key: str, **fill: object) -> str:
        text = MESSAGES[key][index].replace("{h}", horizon)
        return text.format(**fill) if fill else text

    return t
